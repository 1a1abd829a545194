"""Between actions and history: the event a step records for each action, and what replay
compares to tell whether the code still asks for what history holds."""

from __future__ import annotations

from datetime import datetime

from orchestration.core import durable_http
from orchestration.core.actions import (
    Action,
    CompleteOrchestration,
    ContinueAsNewAction,
    CreateTimer,
    ScheduleActivity,
    SendEvent,
    StartSubOrchestration,
)
from orchestration.core.history import (
    ContinueAsNew,
    EventSent,
    ExecutionCompleted,
    HistoryEvent,
    SubOrchestrationInstanceCreated,
    TaskScheduled,
    TimerCreated,
)


def scheduling_event(action: Action, now: datetime) -> HistoryEvent:
    if isinstance(action, ScheduleActivity):
        # A durable HTTP request's credential headers stay out of history (the message keeps them).
        recorded = durable_http.recorded_input(action.name, action.input)
        return TaskScheduled(action.id, now, action.name, recorded)
    if isinstance(action, CreateTimer):
        return TimerCreated(action.id, now, action.fire_at)
    if isinstance(action, StartSubOrchestration):
        return SubOrchestrationInstanceCreated(
            action.id, now, action.name, action.instance_id, action.input, action.version
        )
    if isinstance(action, SendEvent):
        return EventSent(action.id, now, action.instance_id, action.name, action.input)
    raise TypeError(f"not a scheduling action: {action!r}")


def completion_event(
    completion: CompleteOrchestration | ContinueAsNewAction, now: datetime
) -> HistoryEvent:
    if isinstance(completion, ContinueAsNewAction):
        return ContinueAsNew(-1, now, completion.input)
    return ExecutionCompleted(-1, now, completion.status, completion.result, completion.failure)


def signature_of_action(action: Action) -> tuple[str, str]:
    if isinstance(action, ScheduleActivity):
        return ("activity", action.name)
    if isinstance(action, CreateTimer):
        return ("timer", "")
    if isinstance(action, StartSubOrchestration):
        return ("sub-orchestration", action.name)
    if isinstance(action, SendEvent):
        return ("send-event", action.name)
    return (type(action).__name__, "")


def signature_of_event(event: HistoryEvent) -> tuple[str, str]:
    """What replay compares: the kind of step and its name (a timer's time may differ)."""
    if isinstance(event, TaskScheduled):
        return ("activity", event.name)
    if isinstance(event, TimerCreated):
        return ("timer", "")
    if isinstance(event, SubOrchestrationInstanceCreated):
        return ("sub-orchestration", event.name)
    if isinstance(event, EventSent):
        return ("send-event", event.name)
    return (type(event).__name__, "")


def describe_event(event: HistoryEvent) -> str:
    if isinstance(event, TaskScheduled):
        return f"call_activity({event.name!r})"
    if isinstance(event, TimerCreated):
        return f"create_timer(fire_at={event.fire_at.isoformat()})"
    if isinstance(event, SubOrchestrationInstanceCreated):
        return f"call_sub_orchestrator({event.name!r}, instance_id={event.instance_id!r})"
    if isinstance(event, EventSent):
        return f"send_event(instance_id={event.instance_id!r}, name={event.name!r})"
    return type(event).__name__
