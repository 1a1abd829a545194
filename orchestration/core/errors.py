"""Exceptions the core raises, each with a message a user can act on."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestration.core.history import FailureDetails


class OrchestrationError(Exception):
    """Base of the engine's own errors."""


class TaskFailedError(OrchestrationError):
    """Raised inside an orchestrator at the `yield` of a task that failed.

    `failure` holds the failed activity's (or sub-orchestration's) exception type, message and
    traceback, so `except TaskFailedError as e: e.failure.error_type` can branch on it.
    """

    def __init__(self, message: str, failure: FailureDetails) -> None:
        super().__init__(message)
        self.failure = failure

    @property
    def error_type(self) -> str:
        return self.failure.error_type


class NonDeterminismError(OrchestrationError):
    """Replay asked for an action that the recorded history does not hold at that point."""


class OrchestratorNotRegisteredError(OrchestrationError):
    """History names an orchestrator that the app does not register."""


class OrchestratorUsageError(OrchestrationError):
    """The orchestrator function broke a rule of the programming model (e.g. yielded a non-task)."""
