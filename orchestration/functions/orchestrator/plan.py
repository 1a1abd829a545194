"""The pure part of a step: which events to apply, the state to commit, when to wake.

No I/O and no clock here: the worker passes the time in. Given the instance's state row and
a batch of arrivals, `admit` decides which events the step applies (dropping those of another
execution, duplicate starts and already-applied once-only events); given the step's result,
`next_state` is the state row to commit, `wake_at` its guard, and `staying_local` which
activities this process runs itself.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from orchestration.core.actions import Action, ContinueAsNewAction, ScheduleActivity
from orchestration.core.executor import ExecutionResult
from orchestration.core.history import (
    EventRaised,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    HistoryEvent,
    OrchestratorStarted,
)
from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.functions.orchestrator.inbox import Arrival
from orchestration.storage.state import APPLIED_IDS_KEPT, InstanceState
from orchestration.telemetry.links import TraceLink

# Events without a natural id: a redelivered copy must be recognised by its message id.
ONCE_ONLY = (EventRaised, ExecutionSuspended, ExecutionResumed, ExecutionTerminated)


@dataclass
class Admitted:
    """What a batch of arrivals brings to a step."""

    events: list[HistoryEvent] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)  # message ids of once-only events
    # A message seen before (or a wake-up): an earlier worker may have died after its
    # commit, so the open work is re-sent.
    redelivered: bool = False
    dropped: int = 0  # events of another execution


def admit(
    arrivals: Sequence[Arrival], state: InstanceState, status: OrchestrationRuntimeStatus
) -> Admitted:
    """The events of `arrivals` that the step applies, for an instance in `state` whose
    session is in `status`."""
    # Only a message seen before (or a sweeper's wake-up) hints that an earlier worker died
    # after its commit; anything else must not re-send, or duplicates would breed.
    admitted = Admitted(
        redelivered=any(a.dequeue_count > 1 or a.message.event is None for a in arrivals)
    )
    for arrival in arrivals:
        message = arrival.message
        event = message.event
        if event is None:
            continue
        if message.execution_id is not None and message.execution_id != state.execution_id:
            admitted.dropped += 1
            continue
        if isinstance(event, ExecutionStarted) and status is not OrchestrationRuntimeStatus.Pending:
            # A start message delivered again (a duplicate, or redelivered after a crash):
            # what the step it started sent may be lost.
            admitted.redelivered = True
            continue
        if isinstance(event, ONCE_ONLY):
            if message.message_id in state.applied_ids or message.message_id in admitted.applied:
                continue
            admitted.applied.append(message.message_id)
        admitted.events.append(event)
    return admitted


def next_state(
    state: InstanceState, result: ExecutionResult, applied: Sequence[str], now: datetime
) -> InstanceState:
    """The state row after a step of `result`."""
    return replace(
        state,
        status=result.status,
        updated_at=now,
        custom_status=result.custom_status,
        output=result.output,
        failure=result.failure,
        steps=state.steps + 1,
        applied_ids=[*state.applied_ids, *applied][-APPLIED_IDS_KEPT:],
    )


def continued_as_new(result: ExecutionResult) -> ContinueAsNewAction | None:
    return next((a for a in result.actions if isinstance(a, ContinueAsNewAction)), None)


def new_execution_start(
    state: InstanceState, action: ContinueAsNewAction, execution_id: str, now: datetime
) -> list[HistoryEvent]:
    """The first events of the execution that continue-as-new starts."""
    started = ExecutionStarted(
        -1,
        now,
        name=state.name,
        instance_id=state.instance_id,
        input=action.input,
        version=action.version,
        parent=state.parent,
        execution_id=execution_id,
    )
    return [OrchestratorStarted(-1, now), started, *action.carryover_events]


def new_execution_state(
    after: InstanceState,
    state: InstanceState,
    result: ExecutionResult,
    action: ContinueAsNewAction,
    execution_id: str,
) -> InstanceState:
    """The state row of the new execution, after its first step `result`."""
    return replace(
        after,
        status=result.status,
        input=action.input,
        output=result.output,
        failure=result.failure,
        custom_status=result.custom_status,
        execution_id=execution_id,
        generation=state.generation + 1,
        steps=1,
        trace=_next_link(state.trace),
    )


def _next_link(stored: str | None) -> str | None:
    """The new execution's span: in the same trace, beside the one that continued."""
    link = TraceLink.decode(stored)
    return link.next_execution().encode() if link is not None else None


def staying_local(
    actions: Sequence[Action],
    *,
    timer_open: bool,
    can_run_here: bool,
    batch_limit: int,
    registered: Container[str],
) -> list[ScheduleActivity]:
    """The activities among `actions` this process runs itself (all or none).

    None while a timer is open: a step's local activities hold the instance's later
    deliveries until they finish, and a timeout racing an activity must fire on time.
    """
    if not can_run_here or timer_open:
        return []
    activities = [a for a in actions if isinstance(a, ScheduleActivity)]
    if len(activities) > batch_limit or any(a.name not in registered for a in activities):
        return []
    return activities


def wake_at(
    due: datetime | None,
    local_work_left: bool,
    row_guarded: bool,
    now: datetime,
    *,
    guard: timedelta,
    timer_horizon: timedelta,
) -> datetime | None:
    """When the sweeper should wake the instance if this process has died meanwhile.

    Work left to this process with no queue message behind it is guarded by the state row:
    local activities of a local start (`guard` from now), and every near timer, which fires
    only in the process that scheduled it (`guard` after it is due; `due` is the earliest open
    timer's). The commit that moves the instance on recomputes it.
    """
    wake: datetime | None = None
    if row_guarded and local_work_left:
        wake = now + guard
    if due is not None and due - now <= timer_horizon:
        # Not from now: commits by processes that do not hold the timer must not keep
        # pushing its guard back. One already past makes the next sweep wake the instance.
        timer_guard = due + guard
        wake = timer_guard if wake is None else min(wake, timer_guard)
    return wake
