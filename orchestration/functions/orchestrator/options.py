"""The orchestrator worker's settings, in one object built from the engine's settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from orchestration.core.versioning import VersioningPolicy
from orchestration.functions.settings import EngineSettings


@dataclass(frozen=True)
class WorkerOptions:
    """How one process's orchestrator worker behaves; the defaults are the shipped ones."""

    cache_size: int = 2000
    """Live sessions kept (least recently used beyond are replayed from storage)."""
    session_idle: float = 300.0
    """Seconds a session unused is kept (its instance may have moved to another process)."""
    finished_memory: int = 10_000
    """Executions remembered as finished, so late copies of their messages are dropped."""
    max_timer_interval: timedelta | None = None
    local_batch: int = 8
    """A step scheduling at most this many activities may run them in this process."""
    local_rounds: int = 1000
    local_seconds: float = 20.0
    """Rounds of local activities after a commit, at most, and for at most this long."""
    local_group_steps: int = 8
    local_group_seconds: float = 0.25
    """Steps (and seconds) folded into one commit by running local activities first."""
    local_start_seconds: float = 0.02
    """How long a local start's commit waits for activities already proven here."""
    local_guard: timedelta = timedelta(seconds=30)
    """The state row's wake-up time guards work no queue message stands behind."""
    local_timer_horizon: timedelta = timedelta(minutes=2)
    """Timers due within this fire from this process, with no queue message."""
    outage_patience: float = 60.0
    """Seconds a step is retried while storage is unreachable."""
    send_patience: float = 600.0
    send_concurrency: int = 32
    """Seconds a step's messages are retried, and how many go out at once."""
    blocked_limit: int = 5
    """Blocked steps after which the instance fails (maxDequeueCount)."""
    step_limit: float = 300.0
    """Seconds a step may run in all (functionTimeout)."""
    versioning: VersioningPolicy = field(default_factory=VersioningPolicy)
    """Which instance versions this worker runs (host.json defaultVersion and strategies)."""
    version_retry_delay: timedelta = timedelta(seconds=5)
    """When an instance's events a version check rejected are visible on the queue again."""

    @classmethod
    def from_settings(cls, settings: EngineSettings) -> WorkerOptions:
        return cls(
            local_batch=settings.local_activity_max_batch,
            blocked_limit=settings.max_dequeue_count,
            step_limit=settings.step_limit.total_seconds(),
            versioning=settings.versioning,
            version_retry_delay=settings.version_reject_delay,
        )
