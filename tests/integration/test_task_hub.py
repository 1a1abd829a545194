"""The task hub's rules, on a real Azurite, with the engine's workers run in this process.

Each test gets its own hub (tables, queues, container) on the session Azurite. A burst worker
drains the queues as the Functions host would, so each rule can be driven step by step.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest

from orchestration.client import DurableOrchestrationClient
from orchestration.core import DurableOrchestrationContext, OrchestrationRuntimeStatus
from orchestration.core.history import EventType, TaskCompleted
from orchestration.core.serialization import InvalidPayloadError
from orchestration.functions.burst import BurstWorker
from orchestration.functions.engine import Engine
from orchestration.functions.orchestrator import OrchestratorWorker
from orchestration.functions.registry import Registry
from orchestration.functions.settings import EngineSettings
from orchestration.functions.triggers import on_start_message, sweep
from orchestration.storage.hub import InstanceExistsError, TaskHub
from orchestration.storage.messages import ActivityBatch, ControlMessage
from tests.conftest import Storage

Context = DurableOrchestrationContext
MIB = 1024 * 1024


def chain(ctx: Context) -> Any:
    x = ctx.get_input() or 0
    for _ in range(3):
        x = yield ctx.call_activity("add_one", x)
    return x


def fan_out(ctx: Context) -> Any:
    results = yield ctx.task_all([ctx.call_activity("add_one", i) for i in range(ctx.get_input())])
    return sum(results)


def wait_days(ctx: Context) -> Any:
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(days=ctx.get_input()))
    return "fired"


def big(ctx: Context) -> Any:
    text = ctx.get_input()
    echoed = yield ctx.call_activity("echo", text)
    return echoed + "!"


def explode(ctx: Context) -> Any:
    result = yield ctx.call_activity("fail_big", ctx.get_input())
    return result


def add_one(value: int) -> int:
    return value + 1


def echo(value: Any) -> Any:
    return value


def fail_big(value: int) -> None:
    raise ValueError("x" * value)


def make_registry() -> Registry:
    registry = Registry()
    for function in (chain, fan_out, wait_days, big, explode):
        registry.add_orchestrator(function.__name__, function)
    for activity in (add_one, echo, fail_big):
        registry.add_activity(activity.__name__, activity, "value")
    return registry


def finished(client: DurableOrchestrationClient, instance_id: str) -> Callable[[], Any]:
    async def check() -> bool:
        status = await client.get_status(instance_id)
        return status is not None and status.runtime_status.is_terminal

    return check


async def run_to_end(hub: TaskHub, client: DurableOrchestrationClient, instance_id: str) -> Any:
    worker = BurstWorker(hub, make_registry(), visibility_timeout=2)
    await worker.run_until(finished(client, instance_id), timeout=60)
    return await client.get_status(instance_id, show_history=True, show_history_output=True)


async def test_a_chain_runs_to_completion_through_the_queues(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    instance_id = await client.start_new("chain", None, 10)
    status = await run_to_end(hub, client, instance_id)
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed
    assert status.output == 13
    kinds = [e["EventType"] for e in status.history]
    assert kinds.count("TaskScheduled") == 3 and kinds.count("TaskCompleted") == 3


async def test_two_workers_on_one_instance_cannot_both_commit(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    registry = make_registry()
    instance_id = await client.start_new("fan_out", None, 2)
    first = OrchestratorWorker(hub, registry)
    second = OrchestratorWorker(hub, registry)
    start = await hub.queues.receive(hub.names.control_queue, 32)
    started = await hub.decode_message(base64.b64decode(start[0].text))
    assert isinstance(started, ControlMessage)
    await first.handle(started)
    # Both workers hold the instance at the same ETag, then each applies one result.
    await first._load(instance_id)
    entry = await second._load(instance_id)
    assert entry is not None
    second.cache.remember(instance_id, entry)
    results = [
        ControlMessage(instance_id, TaskCompleted(-1, datetime.now(UTC), task, str(task + 1)))
        for task in (0, 1)
    ]
    outcomes = await asyncio.gather(
        first.handle(results[0]), second.handle(results[1]), return_exceptions=True
    )
    assert outcomes == [None, None]
    assert first.stats.conflicts + second.stats.conflicts == 1
    status = await client.get_status(instance_id, show_history=True)
    assert status is not None and status.runtime_status is OrchestrationRuntimeStatus.Completed
    assert status.output == 3
    assert [e["EventType"] for e in status.history].count("TaskCompleted") == 2


async def test_duplicated_and_reordered_results_are_applied_once(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    registry = make_registry()
    instance_id = await client.start_new("fan_out", None, 3)
    worker = OrchestratorWorker(hub, registry)
    start = await hub.queues.receive(hub.names.control_queue, 32)
    started = await hub.decode_message(base64.b64decode(start[0].text))
    assert isinstance(started, ControlMessage)
    await worker.handle(started)
    now = datetime.now(UTC)
    deliveries = [2, 0, 2, 1, 0]
    for task in deliveries:
        event = TaskCompleted(-1, now, task, str(task + 1))
        await worker.handle(ControlMessage(instance_id, event), dequeue_count=1)
    status = await client.get_status(instance_id, show_history=True)
    assert status is not None and status.output == 6
    completed = [e for e in status.history if e["EventType"] == EventType.TASK_COMPLETED]
    assert sorted(e["TaskScheduledId"] for e in completed) == [0, 1, 2]


@pytest.mark.parametrize(
    ("point", "local"),
    [("send.activity", False), ("commit.after", False), ("commit.after", True)],
    ids=["queue-send-fails", "queue-commit-then-crash", "local-commit-then-crash"],
)
async def test_a_worker_failing_between_commit_and_send_loses_nothing(
    hub: TaskHub, client: DurableOrchestrationClient, point: str, local: bool
) -> None:
    # Local steps are group-committed: the whole chain is one commit, so fail the first.
    on_call = 1 if local else 2
    hub.faults.arm(point, "raise", on_call=on_call)
    instance_id = await client.start_new("chain", None, 0)
    worker = BurstWorker(
        hub, make_registry(), visibility_timeout=1, local_activities=local, direct_results=local
    )
    await worker.run_until(finished(client, instance_id), timeout=60)
    status = await client.get_status(instance_id, show_history=True)
    assert status is not None and status.output == 3
    assert hub.faults.hits[point] >= on_call
    assert worker.stats.failures >= 1
    kinds = [e["EventType"] for e in status.history]
    assert kinds.count("TaskCompleted") == 3


async def test_small_steps_run_their_activities_locally_without_queue_hops(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    instance_id = await client.start_new("chain", None, 0)
    worker = BurstWorker(hub, make_registry())
    hub.account.reset_stats()
    await worker.run_until(finished(client, instance_id), timeout=60)
    assert worker.orchestrators.stats.local_activities == 3
    assert hub.account.stats.get("queue.send", 0) == 0
    status = await client.get_status(instance_id)
    assert status is not None and status.output == 3


async def test_a_timer_beyond_the_queue_delay_limit_waits_in_the_timers_table(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    instance_id = await client.start_new("wait_days", None, 30)
    worker = BurstWorker(hub, make_registry())
    await worker.run_until(timeout=30)
    rows = [row async for row in hub.tables.query(hub.names.timers_table)]
    assert len(rows) == 1
    assert await hub.queues.approximate_count(hub.names.control_queue) == 0
    status = await client.get_status(instance_id)
    assert status is not None and status.runtime_status is OrchestrationRuntimeStatus.Running

    await sweep(hub, timedelta(days=365), datetime.now(UTC) + timedelta(days=2))
    assert len([row async for row in hub.tables.query(hub.names.timers_table)]) == 1
    await sweep(hub, timedelta(days=365), datetime.now(UTC) + timedelta(days=30))
    assert [row async for row in hub.tables.query(hub.names.timers_table)] == []
    status = await run_to_end(hub, client, instance_id)
    assert status.output == "fired"


async def test_megabyte_inputs_and_outputs_move_to_blobs_and_back(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    text = "é" + "a" * MIB
    instance_id = await client.start_new("big", None, text)
    status = await run_to_end(hub, client, instance_id)
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed
    assert status.output == text + "!"
    full = await client.get_status(instance_id, show_history=True, show_input=True)
    assert full is not None and full.input_ == text
    assert "$blob" not in json.dumps(full.to_json())
    blobs = await hub.blobs.list(hub.names.payload_container)
    assert blobs, "large payloads should live in blobs"


async def test_a_megabyte_exception_message_fails_the_instance_readably(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    instance_id = await client.start_new("explode", None, MIB)
    status = await run_to_end(hub, client, instance_id)
    assert status.runtime_status is OrchestrationRuntimeStatus.Failed
    assert status.output.startswith("TaskFailedError: Activity 'fail_big' failed: ValueError: xxx")
    assert len(status.output) > MIB


async def test_a_fan_out_of_2000_activities_commits_beyond_one_batch(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    instance_id = await client.start_new("fan_out", None, 2000)
    worker = BurstWorker(hub, make_registry(), visibility_timeout=60)
    await worker.run_until(finished(client, instance_id), timeout=240)
    status = await client.get_status(instance_id)
    assert status is not None and status.output == sum(range(1, 2001))


@pytest.mark.parametrize("instance_id", ["a/b#c?d\\e%f", "order 42 'quoted'", "ü-ñ-漢字"])
async def test_instance_ids_with_characters_table_keys_forbid_work(
    hub: TaskHub, client: DurableOrchestrationClient, instance_id: str
) -> None:
    await client.start_new("chain", instance_id, 1)
    status = await run_to_end(hub, client, instance_id)
    assert status.instance_id == instance_id
    assert status.output == 4
    listed = [s.instance_id for s in await client.get_status_all()]
    assert instance_id in listed


async def test_a_lost_result_is_repaired_by_the_sweep(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    registry = make_registry()
    instance_id = await client.start_new("chain", None, 0)
    worker = BurstWorker(hub, registry, local_activities=False, direct_results=False)
    await worker.poll_once()  # the start: schedules the first activity
    await worker.poll_once()  # the activity: its result goes to the control queue
    lost = await hub.queues.receive(hub.names.control_queue, 32)
    assert len(lost) == 1
    await hub.queues.delete(hub.names.control_queue, lost[0].id, lost[0].pop_receipt)

    await sweep(hub, timedelta(seconds=0), datetime.now(UTC) + timedelta(seconds=1))
    status = await run_to_end(hub, client, instance_id)
    assert status.output == 3


def lifecycle(ctx: Context) -> Any:
    first = yield ctx.wait_for_external_event("Go")
    ctx.set_custom_status({"got": first})
    second = yield ctx.wait_for_external_event("Go")
    return [first, second]


def counter(ctx: Context) -> Any:
    n = ctx.get_input()
    value = yield ctx.call_activity("add_one", n)
    if value < 5:
        ctx.continue_as_new(value)
        return None
    return value


def parent(ctx: Context) -> Any:
    results = yield ctx.task_all(
        [ctx.call_sub_orchestrator("chain", i, f"{ctx.instance_id}-child-{i}") for i in range(3)]
    )
    return results


def extended_registry() -> Registry:
    registry = make_registry()
    for function in (lifecycle, counter, parent):
        registry.add_orchestrator(function.__name__, function)
    return registry


async def drain(hub: TaskHub, client: DurableOrchestrationClient, instance_id: str | None) -> None:
    worker = BurstWorker(hub, extended_registry(), visibility_timeout=2)
    if instance_id is None:
        await worker.run_until(timeout=30)
    else:
        await worker.run_until(finished(client, instance_id), timeout=60)


async def test_events_suspend_and_resume_reach_the_instance_once(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    instance_id = await client.start_new("lifecycle")
    await drain(hub, client, None)
    await client.suspend(instance_id, "maintenance")
    await client.raise_event(instance_id, "Go", 1)
    await drain(hub, client, None)
    status = await client.get_status(instance_id)
    assert status is not None and status.runtime_status is OrchestrationRuntimeStatus.Suspended
    await client.resume(instance_id)
    await drain(hub, client, None)
    status = await client.get_status(instance_id)
    assert status is not None and status.custom_status == {"got": 1}
    assert status.runtime_status is OrchestrationRuntimeStatus.Running
    await client.raise_event(instance_id, "Go", 2)
    await drain(hub, client, instance_id)
    status = await client.get_status(instance_id)
    assert status is not None and status.output == [1, 2]


async def test_terminate_ends_a_waiting_instance(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    instance_id = await client.start_new("lifecycle")
    await drain(hub, client, None)
    await client.terminate(instance_id, "no longer needed")
    await drain(hub, client, instance_id)
    status = await client.get_status(instance_id)
    assert status is not None and status.runtime_status is OrchestrationRuntimeStatus.Terminated
    assert status.output == "no longer needed"


async def test_continue_as_new_keeps_only_the_latest_execution(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    instance_id = await client.start_new("counter", None, 0)
    await drain(hub, client, instance_id)
    status = await client.get_status(instance_id, show_history=True)
    assert status is not None and status.output == 5
    assert [e["EventType"] for e in status.history].count("ExecutionStarted") == 1


async def test_sub_orchestrations_report_to_their_parent(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    instance_id = await client.start_new("parent", "p1")
    await drain(hub, client, instance_id)
    status = await client.get_status(instance_id)
    assert status is not None and status.output == [3, 4, 5]
    child = await client.get_status("p1-child-1")
    assert child is not None and child.output == 4


async def test_activities_of_a_fan_out_run_concurrently(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def slow(value: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.2)
        with lock:
            running -= 1
        return value

    def fan(ctx: Context) -> Any:
        results = yield ctx.task_all([ctx.call_activity("slow", i) for i in range(6)])
        return results

    registry = Registry()
    registry.add_orchestrator("fan", fan)
    registry.add_activity("slow", slow, "value")
    instance_id = await client.start_new("fan")
    worker = BurstWorker(hub, registry)
    await worker.run_until(finished(client, instance_id), timeout=60)
    status = await client.get_status(instance_id)
    assert status is not None and status.output == list(range(6))
    assert peak > 1


async def test_a_start_message_from_any_producer_starts_an_orchestration(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    engine = Engine(extended_registry(), EngineSettings(hub_name=hub.names.hub), hub=hub)
    good = json.dumps({"name": "chain", "input": 1, "instanceId": "from-queue"}).encode()
    await on_start_message(engine, func.QueueMessage(id="m1", body=good))
    bad_messages = [
        b"not json",
        json.dumps({"name": "nope"}).encode(),
        b'{"name": "chain", "instanceId": "a\\u0001"}',
        b'{"name": "chain", "instanceId": "inf", "input": 1e99999}',
        b'{"name": "chain", "instanceId": "nan", "input": NaN}',
        b'{"name": "chain", "instanceId": "surrogate", "input": "\\ud800"}',
    ]
    for bad in bad_messages:
        await on_start_message(engine, func.QueueMessage(id="m2", body=bad))
    await drain(hub, client, "from-queue")
    status = await client.get_status("from-queue")
    assert status is not None and status.output == 4
    poisoned = await hub.queues.receive(f"{hub.names.starts_queue}-poison", 32)
    reasons = [json.loads(m.text)["reason"] for m in poisoned]
    assert len(reasons) == 6
    assert any("no orchestrator named 'nope'" in r for r in reasons)
    assert sum("not valid JSON" in r for r in reasons) == 3
    for refused in ("inf", "nan", "surrogate"):
        assert await client.get_status(refused) is None


async def test_the_client_refuses_values_that_are_not_strict_json(
    client: DurableOrchestrationClient,
) -> None:
    for value in (float("nan"), {"x": float("inf")}, "\ud800"):
        with pytest.raises(InvalidPayloadError):
            await client.start_new("chain", "never", value)
    assert await client.get_status("never") is None
    instance_id = await client.start_new("chain", None, 1)
    with pytest.raises(InvalidPayloadError):
        await client.raise_event(instance_id, "Go", {"bad": float("-inf")})


async def test_a_duplicate_delivery_does_not_make_the_worker_resend_open_work(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    instance_id = await client.start_new("fan_out", None, 2)
    worker = OrchestratorWorker(hub, make_registry())
    start = await hub.queues.receive(hub.names.control_queue, 32)
    started = await hub.decode_message(base64.b64decode(start[0].text))
    assert isinstance(started, ControlMessage)
    await worker.handle(started)
    result = TaskCompleted(-1, datetime.now(UTC), 0, "1")
    for _ in range(3):
        await worker.handle(ControlMessage(instance_id, result), dequeue_count=1)
    assert worker.stats.resends == 0
    await worker.handle(ControlMessage(instance_id, result), dequeue_count=2)
    assert worker.stats.resends == 1  # the one open activity, re-sent once


FLAKY_FAILURES: dict[str, int] = {}


def flaky_once(value: str) -> str:
    FLAKY_FAILURES[value] = FLAKY_FAILURES.get(value, 0) + 1
    if FLAKY_FAILURES[value] == 1:
        raise ConnectionError("first call fails")
    return f"ok {value}"


def rewindable(ctx: Context) -> Any:
    first = yield ctx.call_activity("add_one", 1)
    second = yield ctx.call_activity("flaky_once", ctx.instance_id)
    return [first, second]


async def test_rewind_retries_the_failure_that_ended_an_instance(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    registry = make_registry()
    registry.add_orchestrator("rewindable", rewindable)
    registry.add_activity("flaky_once", flaky_once, "value")
    instance_id = await client.start_new("rewindable")
    worker = BurstWorker(hub, registry)
    await worker.run_until(finished(client, instance_id), timeout=60)
    status = await client.get_status(instance_id)
    assert status is not None and status.runtime_status is OrchestrationRuntimeStatus.Failed

    await client.rewind(instance_id, "try again")
    await worker.run_until(finished(client, instance_id), timeout=60)
    status = await client.get_status(instance_id, show_history=True)
    assert status is not None and status.runtime_status is OrchestrationRuntimeStatus.Completed
    assert status.output == [2, f"ok {instance_id}"]
    assert not any(e["EventType"] == "TaskFailed" for e in status.history)


def length(value: str) -> int:
    return len(value)


def wide_and_heavy(ctx: Context) -> Any:
    lengths = yield ctx.task_all(
        [ctx.call_activity("length", "x" * 15_000) for _ in range(ctx.get_input())]
    )
    return sum(lengths)


async def test_a_step_beyond_the_transaction_size_limit_still_commits_atomically(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    registry = make_registry()
    registry.add_orchestrator("wide_and_heavy", wide_and_heavy)
    registry.add_activity("length", length, "value")
    instance_id = await client.start_new("wide_and_heavy", None, 300)
    worker = BurstWorker(hub, registry, visibility_timeout=60)
    await worker.run_until(finished(client, instance_id), timeout=240)
    status = await client.get_status(instance_id, show_history=True)
    assert status is not None and status.output == 300 * 15_000
    assert [e["EventType"] for e in status.history].count("TaskScheduled") == 300


async def test_a_storage_outage_during_a_step_is_waited_out_not_failed(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    hub.faults.arm("commit.before", "outage", on_call=1, times=3)
    instance_id = await client.start_new("chain", None, 0)
    worker = BurstWorker(hub, make_registry())
    await worker.run_until(finished(client, instance_id), timeout=60)
    status = await client.get_status(instance_id, show_history=True)
    assert status is not None and status.output == 3
    assert worker.orchestrators.stats.outage_retries == 3
    assert worker.stats.failures == 0
    assert [e["EventType"] for e in status.history].count("TaskCompleted") == 3


async def test_the_same_sub_orchestration_start_racing_itself_creates_the_child_once(
    hub: TaskHub,
) -> None:
    """A repair can re-send a step's StartSubOrchestration while the first send is in
    flight: both writes race, and the loser must take the winner's instance as its own (same
    message id) instead of failing the parent with InstanceExistsError."""
    now = datetime.now(UTC)

    async def start(instance_id: str, message_id: str, execution_id: str) -> Any:
        return await hub.create_instance(
            "chain", instance_id, "1", now=now, execution_id=execution_id, message_id=message_id
        )

    first, second = await asyncio.gather(
        start("child-1", "p:sub:0", "e1"), start("child-1", "p:sub:0", "e2")
    )
    assert first.execution_id == second.execution_id  # one instance, created once
    stored = await hub.read_state("child-1")
    assert stored is not None and stored.execution_id == first.execution_id
    # Two different starts racing for one id: the loser is refused.
    with pytest.raises(InstanceExistsError, match="concurrently"):
        await asyncio.gather(start("child-2", "q:sub:0", "e3"), start("child-2", "r:sub:0", "e4"))


async def test_a_worker_whose_cached_session_is_behind_storage_still_applies_a_result(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    """Worker B caches the instance, worker A moves it on, then B gets the result of the
    activity A scheduled: B's cached session does not know that task, so B must read the
    instance again rather than drop the result as a duplicate."""
    registry = make_registry()
    instance_id = await client.start_new("chain", None, 0)
    first = OrchestratorWorker(hub, registry)
    second = OrchestratorWorker(hub, registry)
    start = await hub.queues.receive(hub.names.control_queue, 32)
    started = await hub.decode_message(base64.b64decode(start[0].text))
    assert isinstance(started, ControlMessage)

    def result(task: int, value: int) -> ControlMessage:
        return ControlMessage(instance_id, TaskCompleted(-1, datetime.now(UTC), task, str(value)))

    await second.handle(started)  # B commits TaskScheduled(0) and keeps the session
    await first.handle(result(0, 1))  # A reads storage, commits TaskScheduled(1)
    await second.handle(result(1, 2))  # B's cached session is one step behind
    assert second.stats.stale_reloads == 1
    status = await client.get_status(instance_id, show_history=True)
    assert status is not None
    assert [e["EventType"] for e in status.history].count("TaskCompleted") == 2


async def test_processes_sharing_a_hub_agree_on_its_instance_links(
    hub: TaskHub, azurite: Storage
) -> None:
    """The link secret is created once, by whichever process needs it first: links given
    out by one host open on every other."""
    others = [
        TaskHub.from_connection_string(azurite.connection_string, hub.names.hub) for _ in range(4)
    ]
    try:
        loaded = await asyncio.gather(*(h.instance_links() for h in [hub, *others]))
        codes = {links.code("inst-1") for links in loaded}
        assert len(codes) == 1
        fresh = TaskHub.from_connection_string(azurite.connection_string, hub.names.hub)
        assert (await fresh.instance_links()).opens("inst-1", codes.pop())
        await fresh.close()
        other_hub = TaskHub.from_connection_string(
            azurite.connection_string, f"T{uuid.uuid4().hex[:12]}"
        )
        await other_hub.create_if_not_exists()
        assert (await other_hub.instance_links()).code("inst-1") != loaded[0].code("inst-1")
        await other_hub.close()
    finally:
        for other in others:
            await other.close()


async def test_a_wide_fan_out_goes_out_in_batches_and_a_batch_seen_again_is_split(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    """200 activities are 50 work items of 4; a batch delivered a second time (one of its
    activities may have crashed a process) is split into one work item per activity."""
    instance_id = await client.start_new("fan_out", None, 200)
    worker = BurstWorker(hub, make_registry(), local_activities=False, visibility_timeout=30)
    start = await hub.queues.receive(hub.names.control_queue, 1)
    started = await hub.decode_message(base64.b64decode(start[0].text))
    assert isinstance(started, ControlMessage)
    await worker.orchestrators.handle(started)
    await hub.queues.delete(hub.names.control_queue, start[0].id, start[0].pop_receipt)
    queue = hub.names.work_item_queue
    assert await hub.queues.approximate_count(queue) == 50
    received = (await hub.queues.receive(queue, 1))[0]
    batch = await hub.decode_message(base64.b64decode(received.text))
    assert isinstance(batch, ActivityBatch) and len(batch.activities) == 4
    await worker.activities.handle_item(batch, attempts=2)
    await hub.queues.delete(queue, received.id, received.pop_receipt)
    assert await hub.queues.approximate_count(queue) == 49 + 4
    assert worker.activities.executed == 0  # split, not run
    await worker.run_until(finished(client, instance_id), timeout=60)
    status = await client.get_status(instance_id, show_history=True)
    assert status is not None and status.output == sum(range(1, 201))
    assert status.history is not None
    completed = [e for e in status.history if e["EventType"] == "TaskCompleted"]
    assert len(completed) == 200


async def test_the_burst_worker_takes_the_triggers_poison_path(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    """One delivery path: a message at the dequeue limit is poisoned and its instance fails
    readably, in the burst worker as in the Functions triggers (it used to be poisoned only)."""
    instance_id = await client.start_new("chain", None, 0)
    worker = BurstWorker(hub, make_registry(), max_dequeue_count=1)
    await worker.run_until(finished(client, instance_id), timeout=30)
    status = await client.get_status(instance_id)
    assert status is not None
    assert status.runtime_status is OrchestrationRuntimeStatus.Failed
    assert "PoisonMessageError" in str(status.output)
    poisoned = await hub.queue_depths()
    assert poisoned[f"{hub.names.control_queue}-poison"] == 1
