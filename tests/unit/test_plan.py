"""The pure part of the orchestrator worker's step: what it applies, commits and guards."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from orchestration.core import OrchestrationRuntimeStatus, ScheduleActivity
from orchestration.core.history import EventRaised, ExecutionStarted, TaskCompleted
from orchestration.functions.orchestrator.inbox import Arrival
from orchestration.functions.orchestrator.plan import admit, staying_local, wake_at
from orchestration.storage.hub import InstanceState
from orchestration.storage.messages import ControlMessage
from tests.unit.simulation import T0

Running = OrchestrationRuntimeStatus.Running


def state(**fields: object) -> InstanceState:
    base = InstanceState("i", "main", Running, T0, T0, execution_id="x1")
    for name, value in fields.items():
        setattr(base, name, value)
    return base


LOOP = asyncio.new_event_loop()


def arrival(message: ControlMessage, dequeue_count: int = 1) -> Arrival:
    return Arrival(message, dequeue_count, LOOP.create_future())


def test_events_of_another_execution_and_applied_once_only_events_are_not_admitted() -> None:
    event = EventRaised(-1, T0, "Go", "1")
    arrivals = [
        arrival(ControlMessage("i", TaskCompleted(-1, T0, 0, "1"), "x1")),
        arrival(ControlMessage("i", TaskCompleted(-1, T0, 1, "2"), "old-execution")),
        arrival(ControlMessage("i", event, None, "m-seen")),
        arrival(ControlMessage("i", event, None, "m-new")),
        arrival(ControlMessage("i", event, None, "m-new")),  # a duplicate in the batch
    ]
    admitted = admit(arrivals, state(applied_ids=["m-seen"]), Running)
    assert [type(e).__name__ for e in admitted.events] == ["TaskCompleted", "EventRaised"]
    assert admitted.applied == ["m-new"] and admitted.dropped == 1
    assert not admitted.redelivered


def test_a_start_seen_again_or_a_wake_up_asks_for_a_repair() -> None:
    started = ExecutionStarted(-1, T0, name="main", instance_id="i")
    again = admit([arrival(ControlMessage("i", started, "x1"))], state(), Running)
    assert again.events == [] and again.redelivered
    woken = admit([arrival(ControlMessage("i", None, None))], state(), Running)
    assert woken.redelivered
    seen = admit([arrival(ControlMessage("i", TaskCompleted(-1, T0, 0, "1")), 2)], state(), Running)
    assert seen.redelivered and len(seen.events) == 1


def test_local_work_and_near_timers_are_guarded_by_the_state_row() -> None:
    guard, horizon = timedelta(seconds=30), timedelta(minutes=2)
    assert wake_at(None, False, True, T0, guard=guard, timer_horizon=horizon) is None
    assert wake_at(None, True, True, T0, guard=guard, timer_horizon=horizon) == T0 + guard
    assert wake_at(None, True, False, T0, guard=guard, timer_horizon=horizon) is None
    near = T0 + timedelta(seconds=5)
    assert wake_at(near, False, False, T0, guard=guard, timer_horizon=horizon) == near + guard
    far = T0 + timedelta(minutes=10)
    assert wake_at(far, False, False, T0, guard=guard, timer_horizon=horizon) is None


def test_activities_stay_local_all_or_none() -> None:
    few = [ScheduleActivity(i, "work", None) for i in range(3)]
    known = {"work"}
    kw = {"can_run_here": True, "batch_limit": 8, "registered": known}
    assert staying_local(few, timer_open=False, **kw) == few  # type: ignore[arg-type]
    assert staying_local(few, timer_open=True, **kw) == []  # type: ignore[arg-type]
    many = [ScheduleActivity(i, "work", None) for i in range(9)]
    assert staying_local(many, timer_open=False, **kw) == []  # type: ignore[arg-type]
    unknown = [*few, ScheduleActivity(9, "elsewhere", None)]
    assert staying_local(unknown, timer_open=False, **kw) == []  # type: ignore[arg-type]
