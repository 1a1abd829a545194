"""Rewind: the history a Failed execution goes on from, with the failures that ended it gone."""

from __future__ import annotations

from collections.abc import Sequence

from orchestration.core.history import (
    ExecutionCompleted,
    HistoryEvent,
    OrchestratorStarted,
    SubOrchestrationInstanceFailed,
    TaskFailed,
)

_FAILURES = (TaskFailed, SubOrchestrationInstanceFailed, ExecutionCompleted)


def rewound(history: Sequence[HistoryEvent]) -> list[HistoryEvent]:
    """`history` without the failures of its last step (failed activities and
    sub-orchestrations, and the failure record): replay then finds that work open again."""
    last_start = max(
        (i for i, e in enumerate(history) if isinstance(e, OrchestratorStarted)), default=0
    )
    return [
        *history[:last_start],
        *(e for e in history[last_start:] if not isinstance(e, _FAILURES)),
    ]
