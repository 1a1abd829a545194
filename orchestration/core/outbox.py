"""What a step's actions ask the outside world to do: the engine's outgoing messages, pure.

A step's actions (schedule an activity, create a timer, start a sub-orchestration, send an
event, complete) become `Outgoing` records: an activity to run, a timer to fire, a child to
start, an event to deliver to another instance (an event sent, a sub-orchestration's result
to its parent). The production worker turns them into queue messages and storage calls; the
unit suite's in-memory simulation carries them out directly. Both use this one mapping, so
what the simulation proves is what production sends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from orchestration.core import serialization
from orchestration.core.actions import (
    Action,
    CompleteOrchestration,
    CreateTimer,
    ScheduleActivity,
    SendEvent,
    StartSubOrchestration,
)
from orchestration.core.entities import ENTITY_OPERATION, pack_requests
from orchestration.core.history import (
    EventRaised,
    FailureDetails,
    HistoryEvent,
    ParentInstance,
    SubOrchestrationInstanceCompleted,
    SubOrchestrationInstanceFailed,
    TimerFired,
)
from orchestration.core.status import OrchestrationRuntimeStatus


@dataclass(frozen=True, slots=True)
class Sender:
    """The execution whose step sends: the fields the outgoing messages need."""

    instance_id: str
    name: str
    execution_id: str | None
    parent: ParentInstance | None = None


@dataclass(frozen=True, slots=True)
class RunActivity:
    task_id: int
    name: str
    input: str | None
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class FireTimer:
    """A durable timer: `event` reaches the instance at `fire_at` (once: `message_id`)."""

    fire_at: datetime
    event: TimerFired
    message_id: str


@dataclass(frozen=True, slots=True)
class StartChild:
    """A sub-orchestration to create (once per parent execution and task: `message_id`)."""

    task_id: int
    name: str
    instance_id: str
    input: str | None
    version: str | None
    parent: ParentInstance
    message_id: str


@dataclass(frozen=True, slots=True)
class DeliverEvent:
    """An event for an instance (`execution_id` None: whichever execution runs; a message
    id when a copy of it must be recognised)."""

    instance_id: str
    event: HistoryEvent
    message_id: str | None = None
    execution_id: str | None = None


Outgoing = RunActivity | FireTimer | StartChild | DeliverEvent


def outgoing(sender: Sender, actions: Iterable[Action], now: datetime) -> list[Outgoing]:
    """What `actions` of `sender`'s step ask to be done, in order."""
    found: list[Outgoing] = []
    execution_id = sender.execution_id
    # One message per entity for all the step's requests to it, in order (one queue message
    # instead of one per request; the entity tells them apart by their ids).
    to_entities: dict[str, list[SendEvent]] = {}
    for action in actions:
        if isinstance(action, ScheduleActivity):
            found.append(RunActivity(action.id, action.name, action.input, action.attempt))
        elif isinstance(action, CreateTimer):
            event = TimerFired(-1, action.fire_at, action.id, action.fire_at)
            found.append(FireTimer(action.fire_at, event, f"{execution_id}:timer:{action.id}"))
        elif isinstance(action, StartSubOrchestration):
            found.append(
                StartChild(
                    action.id,
                    action.name,
                    action.instance_id,
                    action.input,
                    action.version,
                    ParentInstance(sender.instance_id, sender.name, action.id),
                    f"{execution_id}:sub:{action.id}",
                )
            )
        elif isinstance(action, SendEvent) and action.name == ENTITY_OPERATION:
            to_entities.setdefault(action.instance_id, []).append(action)
        elif isinstance(action, SendEvent):
            raised = EventRaised(-1, now, action.name, action.input)
            message_id = f"{sender.instance_id}:{execution_id}:event:{action.id}"
            found.append(DeliverEvent(action.instance_id, raised, message_id))
        elif isinstance(action, CompleteOrchestration) and sender.parent is not None:
            found.append(result_to_parent(sender, action, now))
    for entity, requests in to_entities.items():
        name, packed = pack_requests([a.input or "" for a in requests])
        message_id = f"{sender.instance_id}:{execution_id}:event:{requests[0].id}"
        if len(requests) > 1:
            message_id += f"-{requests[-1].id}"
        found.append(DeliverEvent(entity, EventRaised(-1, now, name, packed), message_id))
    return found


def result_to_parent(
    sender: Sender, completion: CompleteOrchestration, now: datetime
) -> DeliverEvent:
    """A sub-orchestration's end, as its parent's task result (completed, or failed with why:
    a failure's details, or the status and reason of a termination)."""
    parent = sender.parent
    assert parent is not None
    event: HistoryEvent
    if completion.status is OrchestrationRuntimeStatus.Completed:
        event = SubOrchestrationInstanceCompleted(
            -1, now, parent.task_scheduled_id, completion.result
        )
    else:
        failure = completion.failure or FailureDetails(
            completion.status.value,
            f"Sub-orchestration {sender.name!r} was {completion.status.value.lower()}: "
            f"{serialization.loads(completion.result)}",
        )
        event = SubOrchestrationInstanceFailed(-1, now, parent.task_scheduled_id, failure)
    return DeliverEvent(parent.instance_id, event)


def child_refused(sender: Sender, child: StartChild, reason: str, now: datetime) -> DeliverEvent:
    """A sub-orchestration that could not be created (its id is taken), as the failed task
    of the parent execution that asked for it."""
    failure = FailureDetails("InstanceExistsError", reason)
    failed = SubOrchestrationInstanceFailed(-1, now, child.task_id, failure)
    return DeliverEvent(sender.instance_id, failed, execution_id=sender.execution_id)
