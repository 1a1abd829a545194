"""History events: the durable record an orchestration is replayed from.

Names follow DurableTask's event types, so that a status's `historyEvents` read like Durable
Functions'. Payloads (inputs, results, event data) are kept as JSON text, exactly as they are
stored, so that replay decodes only what the orchestrator actually reads.

`event_id` is the sequence number of the action that produced a scheduling event
(TaskScheduled, TimerCreated, SubOrchestrationInstanceCreated, EventSent) and -1 for others.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any, ClassVar

from orchestration.core.status import OrchestrationRuntimeStatus


class EventType(StrEnum):
    """The kinds of history event, named as DurableTask names them."""

    EXECUTION_STARTED = "ExecutionStarted"
    EXECUTION_COMPLETED = "ExecutionCompleted"
    EXECUTION_TERMINATED = "ExecutionTerminated"
    EXECUTION_SUSPENDED = "ExecutionSuspended"
    EXECUTION_RESUMED = "ExecutionResumed"
    CONTINUE_AS_NEW = "ContinueAsNew"
    ORCHESTRATOR_STARTED = "OrchestratorStarted"
    TASK_SCHEDULED = "TaskScheduled"
    TASK_COMPLETED = "TaskCompleted"
    TASK_FAILED = "TaskFailed"
    TIMER_CREATED = "TimerCreated"
    TIMER_FIRED = "TimerFired"
    SUB_ORCHESTRATION_CREATED = "SubOrchestrationInstanceCreated"
    SUB_ORCHESTRATION_COMPLETED = "SubOrchestrationInstanceCompleted"
    SUB_ORCHESTRATION_FAILED = "SubOrchestrationInstanceFailed"
    EVENT_RAISED = "EventRaised"
    EVENT_SENT = "EventSent"
    PATCH_APPLIED = "PatchApplied"  # ours: context.is_patched's marker


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One applied history event as DF's `context.histories` lists it, without payloads."""

    event_type: EventType
    event_id: int
    timestamp: datetime
    name: str | None = None
    is_played: bool = False  # applied by an earlier step (DF's IsPlayed)

    @classmethod
    def of(cls, event: HistoryEvent) -> HistoryRecord:
        name = getattr(event, "name", None)
        return cls(event.event_type, event.event_id, event.timestamp,
                   name if isinstance(name, str) else None)  # fmt: skip


@dataclass(frozen=True, slots=True)
class FailureDetails:
    """Why a task or an orchestration failed: exception type, message and traceback."""

    error_type: str
    message: str
    stack_trace: str | None = None
    inner: FailureDetails | None = None

    def describe(self) -> str:
        return f"{self.error_type}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"errorType": self.error_type, "message": self.message}
        if self.stack_trace is not None:
            data["stackTrace"] = self.stack_trace
        if self.inner is not None:
            data["inner"] = self.inner.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FailureDetails:
        inner = data.get("inner")
        return cls(
            error_type=data["errorType"],
            message=data["message"],
            stack_trace=data.get("stackTrace"),
            inner=cls.from_dict(inner) if inner else None,
        )


@dataclass(frozen=True, slots=True)
class ParentInstance:
    """The orchestration that started this one as a sub-orchestration."""

    instance_id: str
    name: str
    task_scheduled_id: int


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """Base of every history event."""

    event_type: ClassVar[EventType]
    event_id: int
    timestamp: datetime

    def to_dict(self) -> dict[str, Any]:
        return event_to_dict(self)


@dataclass(frozen=True, slots=True)
class ExecutionStarted(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.EXECUTION_STARTED
    name: str
    instance_id: str
    input: str | None = None
    version: str | None = None
    parent: ParentInstance | None = None
    execution_id: str | None = None
    scheduled_start: datetime | None = None


@dataclass(frozen=True, slots=True)
class ExecutionCompleted(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.EXECUTION_COMPLETED
    status: OrchestrationRuntimeStatus
    result: str | None = None
    failure: FailureDetails | None = None


@dataclass(frozen=True, slots=True)
class ExecutionTerminated(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.EXECUTION_TERMINATED
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionSuspended(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.EXECUTION_SUSPENDED
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionResumed(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.EXECUTION_RESUMED
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ContinueAsNew(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.CONTINUE_AS_NEW
    input: str | None = None


@dataclass(frozen=True, slots=True)
class OrchestratorStarted(HistoryEvent):
    """Opens an episode; its timestamp is the orchestration's `current_utc_datetime`."""

    event_type: ClassVar[EventType] = EventType.ORCHESTRATOR_STARTED


@dataclass(frozen=True, slots=True)
class TaskScheduled(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.TASK_SCHEDULED
    name: str
    input: str | None = None


@dataclass(frozen=True, slots=True)
class TaskCompleted(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.TASK_COMPLETED
    task_scheduled_id: int
    result: str | None = None


@dataclass(frozen=True, slots=True)
class TaskFailed(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.TASK_FAILED
    task_scheduled_id: int
    failure: FailureDetails


@dataclass(frozen=True, slots=True)
class TimerCreated(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.TIMER_CREATED
    fire_at: datetime


@dataclass(frozen=True, slots=True)
class TimerFired(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.TIMER_FIRED
    timer_id: int
    fire_at: datetime


@dataclass(frozen=True, slots=True)
class SubOrchestrationInstanceCreated(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.SUB_ORCHESTRATION_CREATED
    name: str
    instance_id: str
    input: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class SubOrchestrationInstanceCompleted(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.SUB_ORCHESTRATION_COMPLETED
    task_scheduled_id: int
    result: str | None = None


@dataclass(frozen=True, slots=True)
class SubOrchestrationInstanceFailed(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.SUB_ORCHESTRATION_FAILED
    task_scheduled_id: int
    failure: FailureDetails


@dataclass(frozen=True, slots=True)
class EventRaised(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.EVENT_RAISED
    name: str
    input: str | None = None


@dataclass(frozen=True, slots=True)
class EventSent(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.EVENT_SENT
    instance_id: str
    name: str
    input: str | None = None


@dataclass(frozen=True, slots=True)
class PatchApplied(HistoryEvent):
    """`context.is_patched(name)` took the patched path in this execution (see core/patches).

    It takes no action sequence number, so history written before the patch replays as it did.
    """

    event_type: ClassVar[EventType] = EventType.PATCH_APPLIED
    name: str


EVENT_CLASSES: dict[str, type[HistoryEvent]] = {
    cls.event_type.value: cls
    for cls in (
        ExecutionStarted,
        ExecutionCompleted,
        ExecutionTerminated,
        ExecutionSuspended,
        ExecutionResumed,
        ContinueAsNew,
        OrchestratorStarted,
        TaskScheduled,
        TaskCompleted,
        TaskFailed,
        TimerCreated,
        TimerFired,
        SubOrchestrationInstanceCreated,
        SubOrchestrationInstanceCompleted,
        SubOrchestrationInstanceFailed,
        EventRaised,
        EventSent,
        PatchApplied,
    )
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, FailureDetails):
        return value.to_dict()
    if isinstance(value, ParentInstance):
        return {
            "instanceId": value.instance_id,
            "name": value.name,
            "taskScheduledId": value.task_scheduled_id,
        }
    return value


_JSON_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


def _json_fields(event_class: type[HistoryEvent]) -> tuple[tuple[str, str], ...]:
    """(attribute, JSON key) of each field of an event class."""
    fields = _JSON_FIELDS.get(event_class)
    if fields is None:
        fields = tuple((f.name, _camel(f.name)) for f in dataclasses.fields(event_class))
        _JSON_FIELDS[event_class] = fields
    return fields


def event_to_dict(event: HistoryEvent) -> dict[str, Any]:
    """The stable JSON form of an event: camelCase keys, ISO 8601 times, None fields left out."""
    data: dict[str, Any] = {"eventType": event.event_type.value}
    for name, key in _json_fields(type(event)):
        value = getattr(event, name)
        if value is not None:
            data[key] = _encode_value(value)
    return data


_DATETIME_FIELDS = {"timestamp", "fire_at", "scheduled_start"}


def _decode_field(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _DATETIME_FIELDS:
        return datetime.fromisoformat(value)
    if name == "failure":
        return FailureDetails.from_dict(value)
    if name == "status":
        return OrchestrationRuntimeStatus(value)
    if name == "parent":
        return ParentInstance(
            instance_id=value["instanceId"],
            name=value["name"],
            task_scheduled_id=value["taskScheduledId"],
        )
    return value


_FIELD_NAMES: dict[type[HistoryEvent], tuple[tuple[str, str], ...]] = {
    cls: tuple((f.name, _camel(f.name)) for f in dataclasses.fields(cls))
    for cls in EVENT_CLASSES.values()
}


def event_from_dict(data: dict[str, Any]) -> HistoryEvent:
    """Rebuild an event from its JSON form (the inverse of `event_to_dict`)."""
    try:
        cls = EVENT_CLASSES[data["eventType"]]
    except KeyError as error:
        raise ValueError(f"unknown history event type: {data.get('eventType')!r}") from error
    kwargs = {
        name: _decode_field(name, data[key]) for name, key in _FIELD_NAMES[cls] if key in data
    }
    return cls(**kwargs)


SCHEDULING_EVENTS: tuple[type[HistoryEvent], ...] = (
    TaskScheduled,
    TimerCreated,
    SubOrchestrationInstanceCreated,
    EventSent,
)
