"""Runtime statuses of an orchestration instance, with Durable Functions' names."""

from __future__ import annotations

from enum import StrEnum


class OrchestrationRuntimeStatus(StrEnum):
    """The runtime status of an orchestration instance."""

    Running = "Running"
    Completed = "Completed"
    ContinuedAsNew = "ContinuedAsNew"
    Failed = "Failed"
    Canceled = "Canceled"
    Terminated = "Terminated"
    Pending = "Pending"
    Suspended = "Suspended"

    @property
    def is_terminal(self) -> bool:
        """True when the instance will take no further step."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        OrchestrationRuntimeStatus.Completed,
        OrchestrationRuntimeStatus.Failed,
        OrchestrationRuntimeStatus.Canceled,
        OrchestrationRuntimeStatus.Terminated,
    }
)
