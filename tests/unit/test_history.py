"""History events keep a stable JSON form, named after DurableTask's event types."""

from __future__ import annotations

import json

import pytest

from orchestration.core import (
    ContinueAsNew,
    EventRaised,
    EventSent,
    ExecutionCompleted,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    FailureDetails,
    HistoryEvent,
    OrchestrationRuntimeStatus,
    OrchestratorStarted,
    ParentInstance,
    SubOrchestrationInstanceCompleted,
    SubOrchestrationInstanceCreated,
    SubOrchestrationInstanceFailed,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
    event_from_dict,
    event_to_dict,
)
from tests.unit.factories import at

FAILURE = FailureDetails("ValueError", "bad", "Traceback ...", FailureDetails("KeyError", "k"))

ONE_OF_EACH: list[HistoryEvent] = [
    ExecutionStarted(
        -1,
        at(0),
        name="order",
        instance_id="abc",
        input='{"a":1}',
        version="2",
        parent=ParentInstance("parent", "outer", 3),
        execution_id="e1",
        scheduled_start=at(5),
    ),
    ExecutionCompleted(-1, at(1), OrchestrationRuntimeStatus.Failed, None, FAILURE),
    ExecutionTerminated(-1, at(1), "stop"),
    ExecutionSuspended(-1, at(1), "pause"),
    ExecutionResumed(-1, at(1), None),
    ContinueAsNew(-1, at(1), "5"),
    OrchestratorStarted(-1, at(1)),
    TaskScheduled(0, at(1), "charge", '"x"'),
    TaskCompleted(-1, at(1), 0, "42"),
    TaskFailed(-1, at(1), 0, FAILURE),
    TimerCreated(1, at(1), at(100)),
    TimerFired(-1, at(100), 1, at(100)),
    SubOrchestrationInstanceCreated(2, at(1), "child", "abc:2", "null", "1"),
    SubOrchestrationInstanceCompleted(-1, at(2), 2, "[1,2]"),
    SubOrchestrationInstanceFailed(-1, at(2), 2, FAILURE),
    EventRaised(-1, at(3), "Approval", "true"),
    EventSent(4, at(3), "other", "Ping", None),
]


@pytest.mark.parametrize("event", ONE_OF_EACH, ids=lambda e: type(e).__name__)
def test_every_event_survives_a_json_round_trip(event: HistoryEvent) -> None:
    text = json.dumps(event_to_dict(event))
    assert event_from_dict(json.loads(text)) == event


def test_json_form_names_the_durabletask_event_type_and_uses_camel_case() -> None:
    data = event_to_dict(TaskCompleted(-1, at(1), 7, "42"))
    assert data == {
        "eventType": "TaskCompleted",
        "eventId": -1,
        "timestamp": "2026-01-01T00:00:01+00:00",
        "taskScheduledId": 7,
        "result": "42",
    }


def test_every_event_type_of_the_durable_task_model_is_covered() -> None:
    names = {type(e).event_type.value for e in ONE_OF_EACH}
    assert names == {
        "ExecutionStarted",
        "ExecutionCompleted",
        "ExecutionTerminated",
        "ExecutionSuspended",
        "ExecutionResumed",
        "ContinueAsNew",
        "OrchestratorStarted",
        "TaskScheduled",
        "TaskCompleted",
        "TaskFailed",
        "TimerCreated",
        "TimerFired",
        "SubOrchestrationInstanceCreated",
        "SubOrchestrationInstanceCompleted",
        "SubOrchestrationInstanceFailed",
        "EventRaised",
        "EventSent",
    }


def test_unknown_event_type_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown history event type: 'Bogus'"):
        event_from_dict({"eventType": "Bogus", "eventId": 1, "timestamp": "2026-01-01T00:00:00"})


def test_events_are_immutable() -> None:
    event = TaskCompleted(-1, at(1), 7, "42")
    with pytest.raises(AttributeError):
        event.result = "43"  # type: ignore[misc]
