"""Live sessions of the instances this worker steps, and the executions it saw finish.

Each instance's session (its suspended generator) is kept with the state row of the commit
that produced it, so a step on a warm instance reads nothing: it commits conditionally on
that ETag, and a 412 means another worker moved on (the entry is dropped and the step re-run
from storage). A local start's state lives here as a seed until its first commit creates it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

from orchestration.core.executor import OrchestrationSession
from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.storage.hub import InstanceState

_FINAL = (OrchestrationRuntimeStatus.Completed, OrchestrationRuntimeStatus.Terminated)


@dataclass(slots=True)
class Cached:
    state: InstanceState
    session: OrchestrationSession
    creating: bool = False  # a local start's state, not yet in storage
    used_at: float = field(default_factory=time.monotonic)  # when last stored or loaded


class SessionCache:
    """Sessions by instance (least recently used dropped beyond `size`), local starts not
    yet committed, and executions seen completed or terminated here."""

    def __init__(
        self, size: int = 2000, finished_memory: int = 10_000, idle: float = 300.0
    ) -> None:
        self.size = size
        self.finished_memory = finished_memory
        self.idle = idle
        self._entries: OrderedDict[str, Cached] = OrderedDict()
        self._seeds: dict[str, InstanceState] = {}
        # Never revived (rewind applies to failed executions only), so late copies of their
        # messages (a redelivery, a repair's re-send) are dropped without reading storage.
        self._finished: OrderedDict[str, str] = OrderedDict()

    @property
    def sessions(self) -> int:
        return len(self._entries)

    @property
    def finished_count(self) -> int:
        return len(self._finished)

    def get(self, instance_id: str) -> Cached | None:
        cached = self._entries.get(instance_id)
        if cached is not None:
            self._entries.move_to_end(instance_id)
            cached.used_at = time.monotonic()
        return cached

    def is_current(self, instance_id: str, entry: Cached) -> bool:
        """Whether `entry` is the one cached (not one just loaded from storage)."""
        return self._entries.get(instance_id) is entry

    def seed(self, state: InstanceState) -> None:
        """A local start's Pending state, until its first commit creates it."""
        self._entries.pop(state.instance_id, None)
        self._seeds[state.instance_id] = state

    def seed_of(self, instance_id: str) -> InstanceState | None:
        return self._seeds.get(instance_id)

    def drop(self, instance_id: str) -> None:
        """Forget the instance's session (storage may have moved on)."""
        self._entries.pop(instance_id, None)

    def drop_seed(self, instance_id: str) -> None:
        self._seeds.pop(instance_id, None)

    def finished_execution(self, instance_id: str) -> str | None:
        """The execution of the instance seen finished here, if any."""
        return self._finished.get(instance_id)

    def remember(self, instance_id: str, entry: Cached) -> None:
        """Keep a committed state and its session (a finished one is only noted)."""
        if entry.state.status.is_terminal:
            self._entries.pop(instance_id, None)
            if entry.state.status in _FINAL:
                self._finished[instance_id] = entry.state.execution_id
                self._finished.move_to_end(instance_id)
                while len(self._finished) > self.finished_memory:
                    self._finished.popitem(last=False)
            return
        self._entries[instance_id] = entry
        self._entries.move_to_end(instance_id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        # An instance's next step may run in another process, and its end too: this one
        # never hears of it, and the session would stay until `size` newer ones pushed it
        # out. So sessions idle for `idle` seconds go (a later step here reloads the
        # instance: one read), as Durable Functions' extended sessions do.
        idle_since = time.monotonic() - self.idle
        while self._entries and next(iter(self._entries.values())).used_at < idle_since:
            self._entries.popitem(last=False)
