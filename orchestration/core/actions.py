"""Actions: what an orchestrator step asks the engine to carry out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orchestration.core.history import FailureDetails, HistoryEvent
from orchestration.core.status import OrchestrationRuntimeStatus


@dataclass(frozen=True, slots=True)
class Action:
    """Base of every action; `id` is the action's sequence number in the orchestration."""

    id: int

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class ScheduleActivity(Action):
    name: str
    input: str | None = None
    attempt: int = 1  # of a retried call: which try this is (not part of history)

    def describe(self) -> str:
        return f"call_activity({self.name!r})"


@dataclass(frozen=True, slots=True)
class CreateTimer(Action):
    fire_at: datetime

    def describe(self) -> str:
        return f"create_timer(fire_at={self.fire_at.isoformat()})"


@dataclass(frozen=True, slots=True)
class StartSubOrchestration(Action):
    name: str
    instance_id: str
    input: str | None = None
    version: str | None = None

    def describe(self) -> str:
        return f"call_sub_orchestrator({self.name!r}, instance_id={self.instance_id!r})"


@dataclass(frozen=True, slots=True)
class SendEvent(Action):
    instance_id: str
    name: str
    input: str | None = None

    def describe(self) -> str:
        return f"send_event(instance_id={self.instance_id!r}, name={self.name!r})"


@dataclass(frozen=True, slots=True)
class CompleteOrchestration(Action):
    """The orchestration ended: completed, failed or terminated."""

    status: OrchestrationRuntimeStatus
    result: str | None = None
    failure: FailureDetails | None = None

    def describe(self) -> str:
        return f"complete(status={self.status.value})"


@dataclass(frozen=True, slots=True)
class ContinueAsNewAction(Action):
    """Restart the orchestration with a new input and an empty history.

    `carryover_events` are external events that arrived but were not consumed, kept when the
    orchestrator asked to preserve unprocessed events; the engine appends them to the new
    history after its ExecutionStarted.
    """

    input: str | None = None
    version: str | None = None
    carryover_events: tuple[HistoryEvent, ...] = ()

    def describe(self) -> str:
        return "continue_as_new()"
