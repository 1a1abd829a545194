"""What a committed step tells telemetry: its span, the execution's span when it ended, and
the instance counters. Called only after the commit succeeded, so a step that lost an ETag
race, or a replay, is never traced."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from orchestration.core.history import (
    EventRaised,
    EventSent,
    ExecutionTerminated,
    HistoryEvent,
    SubOrchestrationInstanceCreated,
    TaskScheduled,
    TimerCreated,
    TimerFired,
)
from orchestration.storage.state import InstanceState
from orchestration.telemetry import metrics, tracing


def _span_events(history: Sequence[HistoryEvent]) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """Timers, external events and children of the step as span events; activities scheduled."""
    events: list[tuple[str, dict[str, Any]]] = []
    scheduled = 0
    for event in history:
        if isinstance(event, TaskScheduled):
            scheduled += 1
        elif isinstance(event, TimerCreated):
            events.append(("timer.created", {"durabletask.fire_at": event.fire_at.isoformat()}))
        elif isinstance(event, TimerFired):
            attributes = {
                "durabletask.fire_at": event.fire_at.isoformat(),
                tracing.TASK_ID: event.timer_id,
            }
            events.append(("timer.fired", attributes))
        elif isinstance(event, EventRaised):
            events.append(("event.raised", {"durabletask.event.name": event.name}))
        elif isinstance(event, EventSent):
            attributes = {
                "durabletask.event.name": event.name,
                "durabletask.event.target": event.instance_id,
            }
            events.append(("event.sent", attributes))
        elif isinstance(event, SubOrchestrationInstanceCreated):
            attributes = {tracing.TASK_NAME: event.name, tracing.INSTANCE_ID: event.instance_id}
            events.append(("suborchestration.created", attributes))
        elif isinstance(event, ExecutionTerminated):
            events.append(("terminated", {"durabletask.reason": event.reason or ""}))
        if len(events) >= 128:  # a wide step keeps its span small
            break
    return events, scheduled


@tracing.guarded
def step_committed(
    before: InstanceState,
    committed: InstanceState,
    history: Sequence[HistoryEvent],
    started_ns: int,
    continued_from: InstanceState | None,
    now: datetime,
) -> None:
    """Trace and count one committed step. `continued_from` is the execution it ended by
    continuing as new (the step belongs to it); `committed` may have ended too (the new
    execution in its first step, or the only one)."""
    recorder = metrics.instruments()
    traced = before.trace is not None and tracing.enabled()
    if recorder is None and not traced:
        return
    execution = continued_from or committed
    if traced:
        events, scheduled = _span_events(history)
        tracing.step_traced(
            execution.trace,
            name=execution.name,
            instance_id=before.instance_id,
            execution_id=execution.execution_id,
            step=before.steps,
            started_ns=started_ns,
            status=execution.status.value,
            events=events,
            attributes={
                "durabletask.step.events": len(history),
                "durabletask.step.activities": scheduled,
            },
        )
    for ended in (continued_from, committed if committed.status.is_terminal else None):
        if ended is not None:
            execution_ended(ended, now)
    if recorder is not None:
        labels = {tracing.TASK_NAME: before.name}
        if before.steps == 0:
            recorder.started.add(1, labels)
        recorder.step_duration.record((time.time_ns() - started_ns) / 1e9, labels)


@tracing.guarded
def execution_ended(ended: InstanceState, now: datetime) -> None:
    """The execution's span (written once: its end was just committed) and counter."""
    tracing.orchestration_ended(
        ended.trace,
        name=ended.name,
        instance_id=ended.instance_id,
        execution_id=ended.execution_id,
        version=ended.version,
        status=ended.status.value,
        started_at=ended.created_at,
        ended_at=now,
        failure=ended.failure,
    )
    recorder = metrics.instruments()
    if recorder is not None:
        recorder.finished.add(
            1, {tracing.TASK_NAME: ended.name, tracing.STATUS: ended.status.value}
        )
