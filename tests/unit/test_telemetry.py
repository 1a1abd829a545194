"""Telemetry's pure parts and the workers' spans, on the in-memory twin of storage.

The SDK provider is handed to the engine by patching `get_tracer_provider` for one test (a
process can set the global provider only once); with none, nothing is traced.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from orchestration.client import DurableOrchestrationClient
from orchestration.core import DurableOrchestrationContext, RetryOptions
from orchestration.functions.burst import BurstWorker
from orchestration.functions.orchestrator.cache import SessionCache
from orchestration.functions.registry import Registry
from orchestration.storage.hub import TaskHub
from orchestration.storage.messages import ActivityMessage, pack_activities, parse
from orchestration.telemetry import tracing
from orchestration.telemetry.links import SpanRef, TraceLink

Context = DurableOrchestrationContext
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


# -- links -------------------------------------------------------------------------------
def test_a_traceparent_is_read_only_when_it_is_one() -> None:
    ref = SpanRef.parse(f"00-{TRACE}-{SPAN}-01")
    assert ref == SpanRef(TRACE, SPAN, True)
    assert ref.traceparent == f"00-{TRACE}-{SPAN}-01"
    assert SpanRef.parse(f"00-{TRACE}-{SPAN}-00") == SpanRef(TRACE, SPAN, False)
    for bad in (
        None,
        42,
        "",
        "00-zz",
        f"ff-{TRACE}-{SPAN}-01",  # the version W3C forbids
        f"00-{'0' * 32}-{SPAN}-01",
        f"00-{TRACE}-{'0' * 16}-01",
        f"00-{TRACE}-{SPAN}",
        f"00-{TRACE}x-{SPAN}-01",
        "00-" + "a" * 200,
    ):
        assert SpanRef.parse(bad) is None, bad


def test_links_round_trip_and_derive() -> None:
    start = SpanRef(TRACE, SPAN, True)
    link = TraceLink.under(start)
    assert link.span.trace_id == TRACE and link.parent_span_id == SPAN
    assert link.span.span_id != SPAN and link.span.sampled
    assert TraceLink.decode(link.encode()) == link
    root = TraceLink.root(sampled=False)
    assert root.parent_span_id is None and TraceLink.decode(root.encode()) == root
    following = link.next_execution()
    assert following.span.trace_id == TRACE and following.parent_span_id == SPAN
    assert following.span.span_id != link.span.span_id
    for unreadable in (None, "", "garbage", f"00-{TRACE}-{SPAN}-01;not-a-span"):
        decoded = TraceLink.decode(unreadable)
        assert decoded is None or decoded.parent_span_id is None


def test_activity_messages_carry_attempt_and_trace_alone_and_in_batches() -> None:
    traceparent = f"00-{TRACE}-{SPAN}-01"
    single = ActivityMessage("i", "x", 3, "work", '"in"', 2, traceparent)
    assert parse(single.to_json()) == single
    plain = ActivityMessage("i", "x", 3, "work", None)
    assert "at" not in plain.to_json() and "tp" not in plain.to_json()
    many = [ActivityMessage("i", "x", n, "work", None, 1 + n % 2, traceparent) for n in range(200)]
    batches = pack_activities(many)
    assert len(batches) < len(many)
    assert [a for b in batches for a in parse(b.to_json()).activities] == many  # type: ignore[union-attr]
    # A trace context of the wrong type never costs the work.
    data = single.to_json() | {"tp": 7}
    assert parse(data) == ActivityMessage("i", "x", 3, "work", '"in"', 2, None)


# -- spans of the workers ------------------------------------------------------------------
def chain(ctx: Context) -> Any:
    x = ctx.get_input() or 0
    for _ in range(3):
        x = yield ctx.call_activity("add_one", x)
    return x


def retried(ctx: Context) -> Any:
    options = RetryOptions(first_retry_interval_in_milliseconds=10, max_number_of_attempts=3)
    result = yield ctx.call_activity_with_retry("flaky", options, "k")
    child = yield ctx.call_sub_orchestrator("chain", result)
    return child


_tries: dict[str, int] = {}


def flaky(key: str) -> int:
    _tries[key] = _tries.get(key, 0) + 1
    if _tries[key] < 3:
        raise RuntimeError(f"try {_tries[key]}")
    return _tries[key]


def registry() -> Registry:
    found = Registry()
    found.add_orchestrator("chain", chain)
    found.add_orchestrator("retried", retried)
    found.add_activity("add_one", lambda value: value + 1, "value")
    found.add_activity("flaky", flaky, "key")
    return found


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    tracing.forget()
    yield memory
    provider.shutdown()


async def run(hub: TaskHub, instance_id: str, **kw: Any) -> Any:
    client = DurableOrchestrationClient(hub)
    worker = BurstWorker(hub, registry(), visibility_timeout=2, **kw)

    async def done() -> bool:
        status = await client.get_status(instance_id)
        return status is not None and status.runtime_status.is_terminal

    await worker.run_until(done, timeout=20, idle_sleep=0.01)
    return await client.get_status(instance_id)


def by_name(spans: Any, prefix: str) -> list[Any]:
    return [s for s in spans if s.name.startswith(prefix)]


async def test_a_replayed_step_is_never_traced_again(
    exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No session cache: every step replays the whole history from storage first.
    monkeypatch.setattr(SessionCache, "get", lambda self, instance_id: None)
    hub = TaskHub.in_memory()
    await hub.create_if_not_exists()
    instance_id = await DurableOrchestrationClient(hub).start_new("chain", None, 1)
    status = await run(hub, instance_id, local_activities=False, direct_results=False)
    assert status.output == 4
    spans = exporter.get_finished_spans()
    (created,) = by_name(spans, "create_orchestration:chain")
    (orchestration,) = by_name(spans, "orchestration:chain")
    state = await hub.read_state(instance_id)
    assert state is not None and state.trace is not None
    link = TraceLink.decode(state.trace)
    assert link is not None
    # The span written at the end has the ids stored at the start.
    context = orchestration.get_span_context()
    assert f"{context.trace_id:032x}" == link.span.trace_id
    assert f"{context.span_id:016x}" == link.span.span_id
    assert orchestration.parent is not None
    assert orchestration.parent.span_id == created.get_span_context().span_id
    steps = by_name(spans, "orchestration_step:chain")
    assert sorted(s.attributes["durabletask.step"] for s in steps) == list(range(state.steps))
    assert {s.parent.span_id for s in steps} == {context.span_id}
    activities = by_name(spans, "activity:add_one")
    assert len(activities) == 3
    assert {s.parent.span_id for s in activities} == {context.span_id}
    assert all(s.attributes["durabletask.activity.where"] == "queued" for s in activities)


async def test_attempts_and_children_nest(exporter: InMemorySpanExporter) -> None:
    _tries.clear()
    hub = TaskHub.in_memory()
    await hub.create_if_not_exists()
    instance_id = await DurableOrchestrationClient(hub).start_new("retried", None, None)
    status = await run(hub, instance_id)
    assert status.output == 6
    spans = exporter.get_finished_spans()
    (parent,) = by_name(spans, "orchestration:retried")
    (child,) = by_name(spans, "orchestration:chain")
    assert child.parent.span_id == parent.get_span_context().span_id
    tries = sorted(
        by_name(spans, "activity:flaky"), key=lambda s: s.attributes["durabletask.task.attempt"]
    )
    assert [s.attributes["durabletask.task.attempt"] for s in tries] == [1, 2, 3]
    assert [s.status.status_code.name for s in tries] == ["ERROR", "ERROR", "UNSET"]
    assert tries[0].events[0].attributes["exception.message"] == "try 1"


async def test_nothing_is_traced_without_a_provider() -> None:
    tracing.forget()
    assert tracing.tracer() is None
    hub = TaskHub.in_memory()
    await hub.create_if_not_exists()
    instance_id = await DurableOrchestrationClient(hub).start_new("chain", None, 1)
    status = await run(hub, instance_id)
    assert status.output == 4
    state = await hub.read_state(instance_id)
    assert state is not None and state.trace is None


class _BareProvider(trace.TracerProvider):
    """A provider whose tracers are not the SDK's (no id generator to pin)."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return trace.NoOpTracer()


async def test_a_provider_other_than_the_sdks_runs_without_failing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: _BareProvider())
    tracing.forget()
    assert tracing.tracer() is not None
    hub = TaskHub.in_memory()
    await hub.create_if_not_exists()
    instance_id = await DurableOrchestrationClient(hub).start_new("chain", None, 1)
    assert (await run(hub, instance_id)).output == 4


async def test_an_instance_started_untraced_gets_a_trace_of_its_own_where_traced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub = TaskHub.in_memory()
    await hub.create_if_not_exists()
    instance_id = await DurableOrchestrationClient(hub).start_new("chain", None, 1)  # untraced
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    tracing.forget()
    assert (await run(hub, instance_id)).output == 4
    (orchestration,) = by_name(memory.get_finished_spans(), "orchestration:chain")
    assert orchestration.parent is None
    trace_id = orchestration.get_span_context().trace_id
    assert {s.context.trace_id for s in memory.get_finished_spans()} == {trace_id}
    assert len(by_name(memory.get_finished_spans(), "activity:add_one")) == 3


# -- telemetry never costs the work ------------------------------------------------------
class _Raising(SimpleSpanProcessor):
    """A processor that fails every span's end (an exporter bug, a full disk)."""

    def on_end(self, span: Any) -> None:
        raise OSError("exporter down")


_runs: list[int] = []


def counted(value: int) -> int:
    _runs.append(value)
    return value + 1


def counted_chain(ctx: Context) -> Any:
    x = ctx.get_input()
    for _ in range(3):
        x = yield ctx.call_activity("counted", x)
    return x


def continued(ctx: Context) -> Any:
    n = ctx.get_input()
    if n < 2:
        yield ctx.call_activity("add_one", n)
        ctx.continue_as_new(n + 1)
        return None
    return n


def big_failure(ctx: Context) -> Any:
    yield ctx.call_activity("explode", None)


def explode(_: Any) -> None:
    raise ValueError("x" * 100_000)


def more_registry() -> Registry:
    found = registry()
    found.add_orchestrator("counted_chain", counted_chain)
    found.add_orchestrator("continued", continued)
    found.add_orchestrator("big_failure", big_failure)
    found.add_activity("counted", counted, "value")
    found.add_activity("explode", explode, "_")
    return found


async def run_with(hub: TaskHub, name: str, value: Any, **kw: Any) -> Any:
    client = DurableOrchestrationClient(hub)
    instance_id = await client.start_new(name, None, value)
    worker = BurstWorker(hub, more_registry(), visibility_timeout=2, **kw)

    async def done() -> bool:
        status = await client.get_status(instance_id)
        return status is not None and status.runtime_status.is_terminal

    await worker.run_until(done, timeout=20, idle_sleep=0.01)
    return await client.get_status(instance_id)


@pytest.mark.parametrize("local", [True, False])
async def test_a_failing_exporter_never_runs_an_activity_twice_or_stalls_a_step(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, local: bool
) -> None:
    provider = TracerProvider()
    provider.add_span_processor(_Raising(InMemorySpanExporter()))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    monkeypatch.setattr(tracing, "_last_complaint", 0.0)  # its warning is once a minute
    tracing.forget()
    _runs.clear()
    hub = TaskHub.in_memory()
    await hub.create_if_not_exists()
    status = await run_with(hub, "counted_chain", 10, local_activities=local)
    assert status.output == 13
    assert _runs == [10, 11, 12]  # each once: no result lost to a span's end
    assert "telemetry failed and was skipped" in caplog.text


async def test_an_execution_that_continues_as_new_and_ends_at_once_gets_both_spans(
    exporter: InMemorySpanExporter,
) -> None:
    hub = TaskHub.in_memory()
    await hub.create_if_not_exists()
    status = await run_with(hub, "continued", 0)
    assert status.output == 2
    executions = by_name(exporter.get_finished_spans(), "orchestration:continued")
    statuses = [s.attributes["durabletask.runtime_status"] for s in executions]
    assert sorted(statuses) == ["Completed", "ContinuedAsNew", "ContinuedAsNew"]
    assert len({s.attributes["durabletask.task.execution_id"] for s in executions}) == 3
    assert len({s.context.trace_id for s in executions}) == 1


async def test_a_huge_failure_is_clipped_in_its_span(exporter: InMemorySpanExporter) -> None:
    hub = TaskHub.in_memory()
    await hub.create_if_not_exists()
    status = await run_with(hub, "big_failure", None)
    assert status.runtime_status.value == "Failed"
    (activity,) = by_name(exporter.get_finished_spans(), "activity:explode")
    message = activity.events[0].attributes["exception.message"]
    assert len(message) <= tracing.MAX_MESSAGE_CHARS and message.endswith("...")
    assert len(activity.status.description) <= 1000


async def test_an_untraced_start_follows_the_workers_sampler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    hub = TaskHub.in_memory()
    await hub.create_if_not_exists()
    memory = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.0)))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    status = await run_with(hub, "chain", 1)  # started and run before the provider
    assert status.output == 4
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    tracing.forget()
    status = await run_with(hub, "counted_chain", 1)
    assert status.output == 4
    assert memory.get_finished_spans() == ()  # none kept: no child without its parent


def test_stored_values_of_the_wrong_type_are_no_link() -> None:
    assert TraceLink.decode(5) is None
    assert TraceLink.decode(["00"]) is None
    assert TraceLink.decode("x" * 1000) is None
    data = ActivityMessage("i", "x", 3, "work", None).to_json()
    for bad in ("two", -1, 0, True, 2.5, None):
        assert parse(data | {"at": bad}).attempt == 1  # type: ignore[union-attr]
