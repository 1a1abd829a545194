"""Durable workflows for Python Azure Functions on plain Azure Storage.

The public face of the package: an app written for `azure.durable_functions` moves over by
importing `orchestration as df` instead.
"""

from __future__ import annotations

from orchestration.client import (
    DurableOrchestrationClient,
    DurableOrchestrationStatus,
    EntityStateResponse,
)
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
from orchestration.core.durable_http import (
    DurableHttpRequest,
    DurableHttpResponse,
    ManagedIdentityTokenSource,
    TokenSource,
)
from orchestration.core.entities import DurableEntityContext, Entity, EntityId
from orchestration.core.tasks import AtomicTask, CompoundTask, RetryableTask
from orchestration.functions.app import Blueprint, DFApp
from orchestration.legacy import Orchestrator, V1ModelError

RetryAbleTask = RetryableTask  # azure-functions-durable's spelling

__all__ = [
    "AtomicTask",
    "Blueprint",
    "CompoundTask",
    "DFApp",
    "DurableEntityContext",
    "DurableHttpRequest",
    "DurableHttpResponse",
    "DurableOrchestrationClient",
    "DurableOrchestrationContext",
    "DurableOrchestrationStatus",
    "Entity",
    "EntityId",
    "EntityStateResponse",
    "ManagedIdentityTokenSource",
    "NonDeterminismError",
    "OrchestrationRuntimeStatus",
    "Orchestrator",
    "Replayer",
    "RetryAbleTask",
    "RetryOptions",
    "RetryableTask",
    "TaskBase",
    "TaskFailedError",
    "TimerTask",
    "TokenSource",
    "V1ModelError",
    "WhenAllTask",
    "WhenAnyTask",
]
