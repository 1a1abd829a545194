"""Small factories for hand-built histories, in the style of durabletask-python's tests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from orchestration.core import (
    EventRaised,
    ExecutionStarted,
    FailureDetails,
    OrchestratorStarted,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
)
from tests.unit.simulation import T0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def started(seconds: float = 0) -> OrchestratorStarted:
    return OrchestratorStarted(-1, at(seconds))


def execution_started(
    name: str = "main", input_: Any = None, instance_id: str = "i"
) -> ExecutionStarted:
    encoded = None if input_ is None else json.dumps(input_)
    return ExecutionStarted(-1, at(0), name=name, instance_id=instance_id, input=encoded)


def scheduled(task_id: int, name: str, input_: Any = None) -> TaskScheduled:
    return TaskScheduled(task_id, at(0), name, None if input_ is None else json.dumps(input_))


def completed(task_id: int, result: Any) -> TaskCompleted:
    return TaskCompleted(-1, at(1), task_id, json.dumps(result))


def failed(task_id: int, error_type: str = "ValueError", message: str = "boom") -> TaskFailed:
    return TaskFailed(-1, at(1), task_id, FailureDetails(error_type, message, None))


def timer_created(timer_id: int, fire_at: datetime) -> TimerCreated:
    return TimerCreated(timer_id, at(0), fire_at)


def timer_fired(timer_id: int, fire_at: datetime) -> TimerFired:
    return TimerFired(-1, fire_at, timer_id, fire_at)


def event_raised(name: str, data: Any = None) -> EventRaised:
    return EventRaised(-1, at(1), name, None if data is None else json.dumps(data))
