"""The host's event loop: asyncio's, with short waits kept to the microsecond.

`epoll_wait` counts its timeout in whole milliseconds, and asyncio rounds a timer's wait up
to the next one, so a callback due in 2.3 ms runs after 3 ms: half a millisecond late on
average, a millisecond at worst. Durable timers fired in the host and `asyncio.sleep` in the
app inherit that. A short wait here goes through select(2) on the epoll descriptor itself,
whose timeout counts microseconds; the ready events are then taken from epoll at once
(`bench/timer_bench.py` measures the effect; the README holds the figures).
"""

from __future__ import annotations

import asyncio
import select
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# Waits at least this long keep epoll's own timeout: its rounding is a small share of them.
PRECISE_BELOW = 0.1
_SELECT_FD_LIMIT = 1024  # select(2) takes descriptors below FD_SETSIZE only


if hasattr(selectors, "EpollSelector"):

    class PreciseEpollSelector(selectors.EpollSelector):
        """An epoll selector whose short timeouts are kept to the microsecond."""

        def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            epoll_fd = self.fileno()
            if timeout is not None and 0 < timeout < PRECISE_BELOW and epoll_fd < _SELECT_FD_LIMIT:
                # A signal ends the wait too: asyncio's wake-up descriptor is in the epoll set.
                readable, _, _ = select.select([epoll_fd], [], [], timeout)
                if not readable:
                    return []
                timeout = 0
            return super().select(timeout)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """An event loop on the precise selector where epoll exists (Linux), else asyncio's."""
    if hasattr(selectors, "EpollSelector"):
        return asyncio.SelectorEventLoop(PreciseEpollSelector())
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on `new_event_loop()`, set as the thread's loop as asyncio.run
    sets its own (a Runner given a loop factory does not)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        asyncio.set_event_loop(runner.get_loop())
        try:
            return runner.run(main)
        finally:
            asyncio.set_event_loop(None)
