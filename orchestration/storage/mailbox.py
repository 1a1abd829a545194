"""What one process knows of its own commits: the waits they wake, and the timers it fires.

The engine builds one `Mailbox` and hands it to its worker and its clients. The worker tells
it of each commit; a client's `wait_for_completion` in the same process is woken by that
commit instead of reading storage, and its reads of commits made elsewhere keep out of the
way of timers this process is about to fire (`TimerWindows`). A client with no mailbox (the
CLI, another process) polls.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from orchestration.storage.hub import InstanceState
from orchestration.storage.timer_windows import TimerWindows

RECENT_STATES_KEPT = 1000


class Mailbox:
    """Waiters on this process's commits, the states it committed last, its timers."""

    def __init__(self) -> None:
        self._watchers: dict[str, list[asyncio.Future[InstanceState]]] = {}
        self._recent: OrderedDict[str, InstanceState] = OrderedDict()
        self.timer_windows = TimerWindows()

    def watch(self, instance_id: str) -> asyncio.Future[InstanceState]:
        """A future for the next state this process commits for the instance (commits made
        by other processes are not seen: a waiter must still poll, if more slowly)."""
        future: asyncio.Future[InstanceState] = asyncio.get_running_loop().create_future()
        self._watchers.setdefault(instance_id, []).append(future)
        return future

    def unwatch(self, instance_id: str, future: asyncio.Future[InstanceState]) -> None:
        waiting = self._watchers.get(instance_id)
        if waiting is not None and future in waiting:
            waiting.remove(future)
            if not waiting:
                del self._watchers[instance_id]

    def committed_here(self, instance_id: str) -> InstanceState | None:
        """The state this process last committed for the instance, if recent; another
        process may have committed since."""
        return self._recent.get(instance_id)

    @property
    def recent_count(self) -> int:
        return len(self._recent)

    def committed(self, state: InstanceState) -> None:
        """This process committed `state`: remember it and wake its waiters."""
        self._recent[state.instance_id] = state
        self._recent.move_to_end(state.instance_id)
        if len(self._recent) > RECENT_STATES_KEPT:
            self._recent.popitem(last=False)
        for future in self._watchers.pop(state.instance_id, ()):
            if not future.done():
                future.set_result(state)
