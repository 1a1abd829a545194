"""The orchestrator worker, in its parts (see `worker` for how they fit together)."""

from orchestration.functions.orchestrator.options import WorkerOptions
from orchestration.functions.orchestrator.stats import WorkerStats
from orchestration.functions.orchestrator.worker import OrchestratorWorker

__all__ = ["OrchestratorWorker", "WorkerOptions", "WorkerStats"]
