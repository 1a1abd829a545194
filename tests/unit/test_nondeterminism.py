"""Non-determinism is caught at replay and explained: the step, the expected and actual action."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from orchestration.core import (
    DurableOrchestrationContext,
    OrchestrationRuntimeStatus,
    Replayer,
    execute,
)
from orchestration.core.errors import (
    CODE_RETURNED,
    CODE_STILL_WAITING,
    non_determinism_message,
    non_determinism_parts,
)
from tests.unit.factories import (
    at,
    completed,
    execution_started,
    scheduled,
    started,
    timer_created,
    timer_fired,
)
from tests.unit.simulation import Simulation

Context = DurableOrchestrationContext

HISTORY = [
    started(0),
    execution_started(),
    scheduled(0, "reserve"),
    started(1),
    completed(0, "r-1"),
    scheduled(1, "charge"),
]
NEW = [started(2), completed(1, "paid")]


def test_a_renamed_activity_fails_with_a_message_naming_step_and_both_actions() -> None:
    def changed(ctx: Context) -> Any:
        yield ctx.call_activity("reserve")
        yield ctx.call_activity("take_payment")
        return "done"

    result = execute(changed, "i", HISTORY, NEW)
    assert result.status is OrchestrationRuntimeStatus.Failed
    assert result.failure is not None
    assert result.failure.error_type == "NonDeterminismError"
    message = result.failure.message
    assert "at step 1" in message
    assert "history has call_activity('charge')" in message
    assert "the code now asks for call_activity('take_payment')" in message


def test_an_activity_replaced_by_a_timer_is_caught() -> None:
    def changed(ctx: Context) -> Any:
        yield ctx.call_activity("reserve")
        yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=5))
        return "done"

    result = execute(changed, "i", HISTORY, NEW)
    assert result.failure is not None
    assert "history has call_activity('charge')" in result.failure.message
    assert "create_timer(" in result.failure.message


def test_a_removed_step_is_caught() -> None:
    def changed(ctx: Context) -> Any:
        yield ctx.call_activity("reserve")
        return "done early"

    result = execute(changed, "i", HISTORY, NEW)
    assert result.failure is not None
    assert result.failure.error_type == "NonDeterminismError"
    assert "history has call_activity('charge')" in result.failure.message
    assert "the code has already returned" in result.failure.message


def test_a_step_replaced_by_an_event_wait_is_caught() -> None:
    def changed(ctx: Context) -> Any:
        yield ctx.call_activity("reserve")
        yield ctx.wait_for_external_event("Approve")
        return "done"

    result = execute(changed, "i", HISTORY, NEW)
    assert result.failure is not None
    assert "did not schedule anything there" in result.failure.message


def test_reordered_steps_are_caught() -> None:
    def changed(ctx: Context) -> Any:
        yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=1))
        yield ctx.call_activity("reserve")
        return None

    history = [started(0), execution_started(), scheduled(0, "reserve")]
    result = execute(changed, "i", history, [started(1), completed(0, "x")])
    assert result.failure is not None
    assert "at step 0" in result.failure.message


def test_a_non_deterministic_instance_sends_no_action_of_the_changed_code() -> None:
    def changed(ctx: Context) -> Any:
        yield ctx.call_activity("reserve")
        yield ctx.call_activity("take_payment")
        yield ctx.call_activity("ship")
        return None

    result = execute(changed, "i", HISTORY, NEW)
    assert [type(a).__name__ for a in result.actions] == ["CompleteOrchestration"]


def test_a_timer_whose_time_changed_is_not_non_determinism() -> None:
    def changed(ctx: Context) -> Any:
        yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=99))
        return "ok"

    history = [started(0), execution_started(), timer_created(0, at(5))]
    result = execute(changed, "i", history, [started(5), timer_fired(0, at(5))])
    assert result.output == '"ok"'


def _record_run() -> tuple[str, list[Any]]:
    def order(ctx: Context) -> Any:
        yield ctx.call_activity("reserve", 1)
        yield ctx.call_activity("charge", 2)
        return "ok"

    sim = Simulation({"order": order}, {"reserve": lambda x: x, "charge": lambda x: x})
    instance = sim.start("order", instance_id="o1")
    sim.run()
    return instance.instance_id, [e.to_dict() for e in instance.history]


def test_replayer_accepts_a_history_recorded_with_the_same_code() -> None:
    def order(ctx: Context) -> Any:
        yield ctx.call_activity("reserve", 1)
        yield ctx.call_activity("charge", 2)
        return "ok"

    instance_id, history = _record_run()
    report = Replayer({"order": order}).replay(instance_id, history)
    assert report.is_deterministic, report.error


def test_replayer_reports_a_history_that_the_current_code_no_longer_matches() -> None:
    def order_v2(ctx: Context) -> Any:
        yield ctx.call_activity("reserve", 1)
        yield ctx.call_activity("fraud_check", 2)
        yield ctx.call_activity("charge", 2)
        return "ok"

    instance_id, history = _record_run()
    report = Replayer({"order": order_v2}).replay(instance_id, history)
    assert not report.is_deterministic
    assert report.error is not None and "fraud_check" in report.error


def test_replayer_reports_a_different_ending() -> None:
    def order_v3(ctx: Context) -> Any:
        yield ctx.call_activity("reserve", 1)
        yield ctx.call_activity("charge", 2)
        yield ctx.call_activity("ship", 3)
        return "ok"

    instance_id, history = _record_run()
    report = Replayer({"order": order_v3}).replay(instance_id, history)
    assert not report.is_deterministic


def test_the_dashboard_reads_step_history_and_code_back_from_each_message() -> None:
    def renamed(ctx: Context) -> Any:
        yield ctx.call_activity("reserve")
        yield ctx.call_activity("take_payment")
        return "done"

    def shortened(ctx: Context) -> Any:
        yield ctx.call_activity("reserve")
        return "done early"

    for code, expected in (
        (renamed, "call_activity('take_payment')"),
        (shortened, CODE_RETURNED),
    ):
        result = execute(code, "i", HISTORY, NEW)
        assert result.failure is not None
        parts = non_determinism_parts(result.failure.message)
        assert parts is not None
        assert parts["step"] == 1
        assert parts["history"] == "call_activity('charge')"
        assert parts["code"] == expected
        assert parts["orchestrator"] == result.failure.message.split("'")[1]
    message = non_determinism_message("wf", 3, None, "the orchestration ended", CODE_STILL_WAITING)
    assert non_determinism_parts(message) == {
        "orchestrator": "wf",
        "step": None,
        "episode": 3,
        "history": "the orchestration ended",
        "code": CODE_STILL_WAITING,
    }
    assert non_determinism_parts("ValueError: Non-deterministic? no") is None


@pytest.mark.timeout(10)
def test_reading_the_parts_back_is_linear_whatever_a_message_holds() -> None:
    # A user's exception can say anything; stored failures are read on every status.
    crafted = "Non-deterministic orchestrator 'a' (episode 1): history has x, but the code y"
    assert non_determinism_parts(crafted * 250) is None  # 19 KB: once minutes of backtracking
    assert non_determinism_parts("Non-deterministic orchestrator " + "a at step 1" * 40) is None
    real = non_determinism_message("wf", 1, 2, "call_activity('a')", "call_activity('b')")
    assert non_determinism_parts(real + " and more") is None
