"""`azure.durable_functions.models`, under its own name: DF's model classes, for apps and
tests that import them from there (`from orchestration.models import DurableOrchestrationStatus`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from orchestration.client import (
    DurableOrchestrationClient,
    DurableOrchestrationStatus,
    PurgeHistoryResult,
)
from orchestration.core import (
    DurableOrchestrationContext,
    OrchestrationRuntimeStatus,
    RetryOptions,
    serialization,
)
from orchestration.core.actions import Action
from orchestration.core.context import FunctionContext
from orchestration.core.durable_http import (
    DurableHttpRequest,
    DurableHttpResponse,
    ManagedIdentityTokenSource,
    TokenSource,
)
from orchestration.core.entities import DurableEntityContext, EntityId
from orchestration.core.executor import ExecutionResult
from orchestration.entity_client import EntityStateResponse
from orchestration.legacy import DurableOrchestrationBindings


@dataclass
class OrchestratorState:
    """What one orchestrator step decided, in DF's shape: done or not, the actions it asks
    for, its output or error, and its custom status."""

    is_done: bool
    actions: list[Action] = field(default_factory=list)
    output: Any = None
    error: str | None = None
    custom_status: Any = None

    @classmethod
    def from_result(cls, result: ExecutionResult) -> OrchestratorState:
        return cls(
            is_done=result.is_done,
            actions=list(result.actions),
            output=serialization.decode(result.output),
            error=result.failure.describe() if result.failure is not None else None,
            custom_status=serialization.decode(result.custom_status),
        )

    @property
    def schema_version(self) -> int:
        """DF's replay-schema number; this engine's actions have one shape."""
        return 0

    def to_json_string(self) -> str:
        return json.dumps(self.to_json(), default=str)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "isDone": self.is_done,
            "actions": [{"type": type(a).__name__, "id": a.id} for a in self.actions],
        }
        if self.output is not None:
            data["output"] = self.output
        if self.error:
            data["error"] = self.error
        if self.custom_status is not None:
            data["customStatus"] = self.custom_status
        return data


__all__ = [
    "DurableEntityContext",
    "DurableHttpRequest",
    "DurableHttpResponse",
    "DurableOrchestrationBindings",
    "DurableOrchestrationClient",
    "DurableOrchestrationContext",
    "DurableOrchestrationStatus",
    "EntityId",
    "EntityStateResponse",
    "FunctionContext",
    "ManagedIdentityTokenSource",
    "OrchestrationRuntimeStatus",
    "OrchestratorState",
    "PurgeHistoryResult",
    "RetryOptions",
    "TokenSource",
]
