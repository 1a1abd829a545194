"""Durable workflows for Python Azure Functions on plain Azure Storage.

The public face of the package: an app written for `azure.durable_functions` moves over by
importing `orchestration as df` instead.
"""

from __future__ import annotations

from orchestration.core import (
    DurableOrchestrationContext,
    NonDeterminismError,
    OrchestrationRuntimeStatus,
    Replayer,
    RetryOptions,
    TaskBase,
    TaskFailedError,
    TimerTask,
    WhenAllTask,
    WhenAnyTask,
)
from orchestration.core.tasks import AtomicTask, RetryableTask

__all__ = [
    "AtomicTask",
    "DurableOrchestrationContext",
    "NonDeterminismError",
    "OrchestrationRuntimeStatus",
    "Replayer",
    "RetryOptions",
    "RetryableTask",
    "TaskBase",
    "TaskFailedError",
    "TimerTask",
    "WhenAllTask",
    "WhenAnyTask",
]
