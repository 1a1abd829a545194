"""What a worker counts (for tests, benches and the operator)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, weakref_slot=True)
class WorkerStats:
    steps: int = 0
    events: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    conflicts: int = 0
    stale_reloads: int = 0
    resends: int = 0
    dropped: int = 0
    local_activities: int = 0
    queued_activities: int = 0
    outage_retries: int = 0
    local_timers: int = 0
    folded_steps: int = 0
    unsent: int = 0
