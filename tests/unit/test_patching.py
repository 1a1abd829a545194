"""`context.is_patched`: new executions take the patch and record it; older histories replay
down the old path; the answer is decided once per execution and survives any replay."""

from __future__ import annotations

from typing import Any

from orchestration.core import (
    DurableOrchestrationContext,
    OrchestrationRuntimeStatus,
    OrchestrationSession,
    Replayer,
    execute,
)
from orchestration.core.history import (
    HistoryEvent,
    PatchApplied,
    TaskScheduled,
    event_from_dict,
    event_to_dict,
)
from tests.unit.factories import completed, execution_started, scheduled, started

Context = DurableOrchestrationContext


def old_code(ctx: Context) -> Any:
    yield ctx.call_activity("validate")
    yield ctx.call_activity("tax")
    return "done"


def patched_code(ctx: Context) -> Any:
    yield ctx.call_activity("validate")
    if ctx.is_patched("tax-v2"):
        yield ctx.call_activity("tax_v2")
    else:
        yield ctx.call_activity("tax")
    return "done"


def _run_live(code: Any, results: int) -> list[HistoryEvent]:
    """Run `code` step by step as the engine does, answering each activity; the history."""
    session = OrchestrationSession({"main": code}, "i")
    history: list[HistoryEvent] = []
    step = session.step([started(0), execution_started()])
    history += step.new_events
    for task_id in range(results):
        step = session.step([started(task_id + 1), completed(task_id, f"r{task_id}")])
        history += step.new_events
    return history


def _names(events: list[HistoryEvent]) -> list[str]:
    return [e.name for e in events if isinstance(e, TaskScheduled)]


def test_a_new_execution_takes_the_patch_and_records_a_marker() -> None:
    history = _run_live(patched_code, 2)
    assert _names(history) == ["validate", "tax_v2"]
    markers = [e for e in history if isinstance(e, PatchApplied)]
    assert [m.name for m in markers] == ["tax-v2"]
    # The marker comes before the step's scheduling events and takes no sequence number.
    position = history.index(markers[0])
    assert isinstance(history[position + 1], TaskScheduled)
    assert markers[0].event_id == -1
    assert history[position + 1].event_id == 1


def test_history_from_before_the_patch_replays_down_the_old_path() -> None:
    history = _run_live(old_code, 1)  # in flight: validate done, tax scheduled
    result = execute(patched_code, "i", history, [started(5), completed(1, "taxed")])
    assert result.status is OrchestrationRuntimeStatus.Completed
    assert not any(isinstance(e, PatchApplied) for e in result.new_events)


def test_an_instance_that_reached_the_patch_before_the_deploy_keeps_the_old_path() -> None:
    # Started on old code and still before the patch point: the patch point is reached
    # live, after the deploy, so it takes the patch.
    history = _run_live(old_code, 0)
    result = execute(patched_code, "i", history, [started(5), completed(0, "ok")])
    assert [e.name for e in result.new_events if isinstance(e, PatchApplied)] == ["tax-v2"]
    assert [a.name for a in result.actions if hasattr(a, "name")] == ["tax_v2"]


def test_a_recorded_marker_makes_every_replay_take_the_patch() -> None:
    history = _run_live(patched_code, 1)
    result = execute(patched_code, "i", history, [started(5), completed(1, "taxed")])
    assert result.status is OrchestrationRuntimeStatus.Completed
    assert result.output == '"done"'
    # The replay records no second marker.
    assert not any(isinstance(e, PatchApplied) for e in result.new_events)


def test_the_first_answer_stands_for_the_rest_of_the_execution() -> None:
    seen: list[bool] = []

    def asks_twice(ctx: Context) -> Any:
        seen.append(ctx.is_patched("p"))
        yield ctx.call_activity("a")
        seen.append(ctx.is_patched("p"))
        yield ctx.call_activity("b")
        return None

    old = [started(0), execution_started(), scheduled(0, "a")]
    seen.clear()
    execute(asks_twice, "i", old, [started(1), completed(0, 1)])
    # Replayed without a marker: False, and still False when asked again live.
    assert seen == [False, False]


def test_the_live_session_and_a_full_replay_agree() -> None:
    live = _run_live(patched_code, 2)
    replayed = _run_live(patched_code, 1)
    result = execute(patched_code, "i", replayed, [started(9), completed(1, "x")])
    assert result.output == '"done"'
    assert next(e for e in live if isinstance(e, PatchApplied)).name == "tax-v2"


def test_markers_round_trip_through_the_stored_json_form() -> None:
    marker = PatchApplied(-1, started(0).timestamp, "tax-v2")
    data = event_to_dict(marker)
    assert data["eventType"] == "PatchApplied" and data["name"] == "tax-v2"
    assert event_from_dict(data) == marker


def test_removing_an_is_patched_call_keeps_patched_histories_replayable() -> None:
    history = _run_live(patched_code, 1)

    def cleaned_up(ctx: Context) -> Any:
        yield ctx.call_activity("validate")
        yield ctx.call_activity("tax_v2")
        return "done"

    result = execute(cleaned_up, "i", history, [started(5), completed(1, "x")])
    assert result.status is OrchestrationRuntimeStatus.Completed


def test_the_replayer_follows_the_markers_episode_by_episode() -> None:
    replayer = Replayer({"main": patched_code})
    assert replayer.replay("new", _run_live(patched_code, 2)).is_deterministic
    assert replayer.replay("old", _run_live(old_code, 2)).is_deterministic
    # Code that drops the old branch while an old instance runs is caught.
    cleaned = Replayer({"main": lambda ctx: (yield from _v2_only(ctx))})
    report = cleaned.replay("old", _run_live(old_code, 2))
    assert not report.is_deterministic
    assert report.error is not None and "tax" in report.error


def _v2_only(ctx: Context) -> Any:
    yield ctx.call_activity("validate")
    yield ctx.call_activity("tax_v2")
    return "done"


def test_the_replayers_engine_check_fails_where_a_worker_would() -> None:
    in_flight = _run_live(old_code, 1)
    assert Replayer({"main": patched_code}).check("i", in_flight).error is None
    report = Replayer({"main": _v2_only}).check("i", in_flight)
    assert not report.is_deterministic
    assert report.error is not None
    assert "history has call_activity('tax')" in report.error
    assert "call_activity('tax_v2')" in report.error
    assert Replayer({}).check("i", in_flight).error is not None
