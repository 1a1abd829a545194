"""`orchestration.testing.OrchestrationTester`: orchestrators run to their end in memory, on
the real replay core, with fakes, real activities, events and a virtual clock."""

from __future__ import annotations

import sys
from collections.abc import Generator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import orchestration as df
from orchestration.core.history import event_to_dict
from orchestration.testing import START, Event, OrchestrationTester

APP_DIR = Path(__file__).resolve().parents[1] / "apps" / "blueprint_app"


@pytest.fixture
def blueprint_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("DURABLE_TEST_HUB", "TesterHub")
    monkeypatch.syspath_prepend(str(APP_DIR))
    for name in ("greetings", "numbers_bp", "function_app"):
        sys.modules.pop(name, None)
    import function_app  # type: ignore[import-not-found]

    yield function_app.app
    for name in ("greetings", "numbers_bp", "function_app"):
        sys.modules.pop(name, None)


def test_an_apps_orchestrators_run_with_its_real_activities(blueprint_app: Any) -> None:
    result = OrchestrationTester(blueprint_app).run("my_orchestrator")
    assert result.status is df.OrchestrationRuntimeStatus.Completed
    assert result.output == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    assert [(c.name, c.input) for c in result.activity_calls] == [
        ("say_hello", "Tokyo"),
        ("say_hello", "Seattle"),
        ("say_hello", "London"),
    ]


def test_fakes_replace_activities_by_name_and_a_failure_fails_the_instance(
    blueprint_app: Any,
) -> None:
    faked = OrchestrationTester(
        blueprint_app, activities={"square": lambda n: n + 1, "say_hello": "hi"}
    ).run("sum_of_squares", [1, 2])
    assert faked.output == {"squares": [2, 3], "total": 5, "greeting": "hi"}

    def broken(n: int) -> int:
        raise ValueError(f"cannot square {n}")

    failed = OrchestrationTester(blueprint_app, activities={"square": broken}).run(
        "sum_of_squares", [4]
    )
    assert failed.status is df.OrchestrationRuntimeStatus.Failed
    assert failed.failure is not None and "cannot square 4" in failed.failure.message


bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext) -> Generator[Any, Any, str]:
    deadline = context.current_utc_datetime + timedelta(days=2)
    timeout = context.create_timer(deadline)
    decision = context.wait_for_external_event("Decision")
    winner = yield context.task_any([decision, timeout])
    if winner is decision:
        timeout.cancel()
        return f"decided {decision.result}"
    return "timed out"


@bp.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext) -> Generator[Any, Any, list[Any]]:
    first = yield context.call_sub_orchestrator("child", 2)
    second = yield context.call_sub_orchestrator("child", 5)
    return [first, second]


@bp.orchestration_trigger(context_name="context")
def child(context: df.DurableOrchestrationContext) -> Generator[Any, Any, int]:
    return (yield context.call_activity("double", context.get_input()))


@bp.activity_trigger(input_name="n")
def double(n: int) -> int:
    return n * 2


@bp.entity_trigger(context_name="context")
def Counter(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        value += context.get_input()
    context.set_state(value)
    context.set_result(value)


@bp.orchestration_trigger(context_name="context")
def counting(context: df.DurableOrchestrationContext) -> Generator[Any, Any, int]:
    counter = df.EntityId("Counter", "k")
    context.signal_entity(counter, "add", 3)
    return (yield context.call_entity(counter, "add", 4))


@bp.orchestration_trigger(context_name="context")
def countdown(context: df.DurableOrchestrationContext) -> Generator[Any, Any, str]:
    left = context.get_input()
    if left == 0:
        return "liftoff"
    yield context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    context.continue_as_new(left - 1)
    return ""


def test_timers_fire_on_a_virtual_clock_and_events_arrive_when_told() -> None:
    decided = OrchestrationTester(bp).run(
        "approval", events=[Event("Decision", "yes", after=timedelta(hours=5))]
    )
    assert decided.output == "decided yes"
    assert timedelta(hours=5) <= decided.finished_at - START < timedelta(hours=6)

    late = OrchestrationTester(bp).run(
        "approval", events=[Event("Decision", "yes", after=timedelta(days=3))]
    )
    assert late.output == "timed out"
    assert late.finished_at - START < timedelta(days=2, minutes=1)


def test_sub_orchestrations_run_for_real_or_faked() -> None:
    real = OrchestrationTester(bp).run("parent")
    assert real.output == [4, 10]
    assert [c.input for c in real.activity_calls] == [2, 5]

    faked = OrchestrationTester(bp, sub_orchestrators={"child": lambda n: -n}).run("parent")
    assert faked.output == [-2, -5] and faked.activity_calls == []


def test_entities_run_their_operations_and_keep_their_state() -> None:
    tester = OrchestrationTester(bp)
    assert tester.run("counting").output == 7
    assert tester.entity_state(df.EntityId("Counter", "k")) == 7


def test_continue_as_new_starts_the_next_execution() -> None:
    result = OrchestrationTester(bp).run("countdown", 3)
    assert result.output == "liftoff"
    assert result.finished_at - START >= timedelta(hours=3)


def test_code_that_is_not_deterministic_is_caught_by_the_replay_check() -> None:
    calls = iter(range(100))

    def flaky(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
        yield context.call_activity(f"step{next(calls)}")  # differs on every replay
        return (yield context.call_activity("step0"))

    tester = OrchestrationTester(orchestrators={"flaky": flaky},
                                 activities={f"step{i}": i for i in range(100)})  # fmt: skip
    with pytest.raises(df.NonDeterminismError, match="must be deterministic"):
        tester.run("flaky")


def test_a_recorded_history_replays_with_the_replayer(blueprint_app: Any) -> None:
    result = OrchestrationTester(blueprint_app).run("my_orchestrator")
    history = [event_to_dict(e) for e in result.history]
    original = blueprint_app._durable_wiring.registry.orchestrators["my_orchestrator"]
    assert df.Replayer({"my_orchestrator": original}).replay("i", history).is_deterministic

    def reordered(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
        yield context.call_activity("square", 1)  # a new first step: old histories break
        return (yield from original(context))

    report = df.Replayer({"my_orchestrator": reordered}).replay("i", history)
    assert not report.is_deterministic and "square" in (report.error or "")


async def test_async_tests_await_run_async_with_async_activities() -> None:
    async def fetch(n: int) -> int:
        return n * 10

    tester = OrchestrationTester(bp, activities={"double": fetch})
    with pytest.raises(RuntimeError, match="run_async"):
        tester.run("child", 1)
    assert (await tester.run_async("child", 4)).output == 40


def test_a_decorated_orchestrator_may_be_passed_itself() -> None:
    result = OrchestrationTester(bp).run(child, 21, instance_id="by-function")
    assert result.output == 42 and result.instance_id == "by-function"
    assert result.custom_status is None


def test_call_http_is_answered_by_the_tests_fake_and_polls_on_the_virtual_clock() -> None:
    from orchestration.core.durable_http import DurableHttpResponse

    def fetch(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
        response = yield context.call_http("GET", "https://example.test/report")
        return [response.status_code, response.content]

    answers = iter([DurableHttpResponse(202, {"Location": "https://example.test/poll"}),
                    DurableHttpResponse(200, {}, "ready")])  # fmt: skip
    seen: list[str] = []

    def server(request: Any) -> Any:
        seen.append(request.uri)
        return next(answers)

    result = OrchestrationTester(orchestrators={"fetch": fetch}, http=server).run("fetch")
    assert result.output == [200, "ready"]
    assert seen == ["https://example.test/report", "https://example.test/poll"]
    assert result.finished_at - START >= timedelta(seconds=30)  # DF's default polling interval

    refused = OrchestrationTester(orchestrators={"fetch": fetch}).run("fetch")
    assert refused.status is df.OrchestrationRuntimeStatus.Failed
    assert (
        refused.failure is not None and "OrchestrationTester(http=...)" in refused.failure.message
    )
