"""Failed tasks raise at their `yield`; uncaught errors fail the instance with details."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from orchestration.core import (
    DurableOrchestrationContext,
    OrchestrationRuntimeStatus,
    TaskFailedError,
    execute,
)
from tests.unit.factories import execution_started, failed, scheduled, started
from tests.unit.simulation import Simulation, run

Context = DurableOrchestrationContext


class CardDeclined(Exception):
    pass


def charge(amount: int) -> str:
    if amount > 100:
        raise CardDeclined(f"card declined for {amount}")
    return f"charged {amount}"


def ok(x: Any) -> Any:
    return x


ACTIVITIES = {"charge": charge, "reserve": ok, "release": ok, "ship": ok}


def test_a_failed_activity_raises_task_failed_error_with_its_type_and_message() -> None:
    def orchestrator(ctx: Context) -> Any:
        try:
            yield ctx.call_activity("charge", 500)
        except TaskFailedError as error:
            return [error.error_type, error.failure.message, str(error)]
        return "not reached"

    _, instance = run(orchestrator, activities=ACTIVITIES)
    error_type, message, text = instance.output
    assert error_type == "CardDeclined"
    assert message == "card declined for 500"
    assert text == "Activity 'charge' failed: CardDeclined: card declined for 500"


def test_the_saga_pattern_is_an_ordinary_try_except() -> None:
    def order(ctx: Context) -> Any:
        amount = ctx.get_input()
        reservation = yield ctx.call_activity("reserve", "sku-1")
        try:
            receipt = yield ctx.call_activity("charge", amount)
        except TaskFailedError:
            yield ctx.call_activity("release", reservation)
            return "compensated"
        yield ctx.call_activity("ship", receipt)
        return "shipped"

    sim, instance = run(order, 500, ACTIVITIES)
    assert instance.output == "compensated"
    assert [name for name, _ in sim.activity_calls] == ["reserve", "charge", "release"]
    sim, instance = run(order, 50, ACTIVITIES)
    assert instance.output == "shipped"


def test_an_uncaught_exception_fails_the_instance_with_type_message_and_traceback() -> None:
    def orchestrator(ctx: Context) -> Any:
        yield ctx.call_activity("reserve", 1)
        raise KeyError("missing sku")

    _, instance = run(orchestrator, activities=ACTIVITIES)
    assert instance.status is OrchestrationRuntimeStatus.Failed
    assert instance.failure is not None
    assert instance.failure.error_type == "KeyError"
    assert instance.failure.message == "'missing sku'"
    assert 'raise KeyError("missing sku")' in (instance.failure.stack_trace or "")


def test_an_uncaught_task_failure_keeps_the_activity_failure_as_inner_details() -> None:
    def orchestrator(ctx: Context) -> Any:
        result = yield ctx.call_activity("charge", 1000)
        return result

    _, instance = run(orchestrator, activities=ACTIVITIES)
    assert instance.failure is not None
    assert instance.failure.error_type == "TaskFailedError"
    assert instance.failure.inner is not None
    assert instance.failure.inner.error_type == "CardDeclined"
    assert "card declined for 1000" in instance.failure.message


def test_task_all_fails_as_soon_as_one_task_fails() -> None:
    def orchestrator(ctx: Context) -> Any:
        slow = ctx.create_timer(ctx.current_utc_datetime + timedelta(days=1))
        tasks = [ctx.call_activity("charge", 1), ctx.call_activity("charge", 999), slow]
        try:
            yield ctx.task_all(tasks)
        except TaskFailedError as error:
            slow.cancel()
            return [error.error_type, ctx.current_utc_datetime < slow.fire_at]
        return "not reached"

    _, instance = run(orchestrator, activities=ACTIVITIES)
    assert instance.output == ["CardDeclined", True]


def test_task_any_completes_with_a_failed_task_without_raising() -> None:
    def orchestrator(ctx: Context) -> Any:
        failing = ctx.call_activity("charge", 999)
        winner = yield ctx.task_any([failing])
        return [winner is failing, winner.is_faulted, type(winner.exception).__name__]

    _, instance = run(orchestrator, activities=ACTIVITIES)
    assert instance.output == [True, True, "TaskFailedError"]


def test_a_failed_sub_orchestration_raises_in_the_parent() -> None:
    def child(ctx: Context) -> Any:
        raise ValueError("child broke")
        yield  # pragma: no cover

    def parent(ctx: Context) -> Any:
        try:
            yield ctx.call_sub_orchestrator("child", None, "kid")
        except TaskFailedError as error:
            return str(error)
        return None

    sim = Simulation({"parent": parent, "child": child})
    instance = sim.start("parent")
    sim.run()
    assert instance.output == (
        "Sub-orchestration 'child' (instance 'kid') failed: ValueError: child broke"
    )


def test_yielding_something_that_is_not_a_task_fails_with_a_clear_reason() -> None:
    def orchestrator(ctx: Context) -> Any:
        yield [ctx.call_activity("reserve", 1)]

    _, instance = run(orchestrator, activities=ACTIVITIES)
    assert instance.failure is not None
    assert instance.failure.error_type == "OrchestratorUsageError"
    assert "may only yield durable tasks" in instance.failure.message


def test_an_output_that_is_not_json_serializable_fails_the_instance() -> None:
    _, instance = run(lambda ctx: object())
    assert instance.status is OrchestrationRuntimeStatus.Failed
    assert instance.failure is not None and "not JSON serializable" in instance.failure.message


def test_an_unregistered_orchestrator_fails_with_its_name() -> None:
    sim = Simulation({"main": lambda ctx: 1})
    instance = sim.start("nope")
    sim.run()
    assert instance.failure is not None
    assert instance.failure.error_type == "OrchestratorNotRegisteredError"
    assert "'nope'" in instance.failure.message


def test_a_failed_instance_emits_no_further_actions() -> None:
    def orchestrator(ctx: Context) -> Any:
        ctx.call_activity("ship", 1)
        raise RuntimeError("stop")
        yield  # pragma: no cover

    result = execute(orchestrator, "i", [], [started(), execution_started()])
    assert [type(a).__name__ for a in result.actions] == ["CompleteOrchestration"]


def test_failure_details_are_the_same_at_every_replay() -> None:
    def orchestrator(ctx: Context) -> Any:
        result = yield ctx.call_activity("charge", 1000)
        return result

    history = [started(), execution_started(), scheduled(0, "charge", 1000)]
    new = [started(1), failed(0, "CardDeclined", "no")]
    first = execute(orchestrator, "i", history, new)
    second = execute(orchestrator, "i", history, new)
    assert first == second
    assert first.failure is not None and first.failure.inner is not None
