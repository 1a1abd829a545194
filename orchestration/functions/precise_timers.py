"""Callbacks on the event loop at a moment, on time however far ahead it is.

An asyncio loop sleeps in `epoll_wait`, and Linux adds a slack of 0.1 % of a poll's timeout
to its wake-up (`select_estimate_accuracy`): a loop idle for 2 s before a timer is due runs it
~2 ms late, one idle for 10 s ~10 ms late. Near durable timers fire in the worker's process
(`LocalTimers.fire_locally`), so this was their lateness. Approaching the moment in
steps, each waking a tenth of the time left before it, keeps the last sleep short and its
slack a few microseconds. What remains is the selector's rounding: up to a millisecond with
asyncio's own epoll selector, a few microseconds on the local host's loop
(`orchestration/host/event_loop.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

# The last sleep before the moment is at most this long (its slack: 0.1 % of it).
FINAL_SLEEP = 0.02
# Each earlier step wakes this share of the time left before the moment: enough to absorb
# its own slack (0.1 % of its sleep) and the selector's rounding.
MARGIN = 0.1


def call_later_precisely(
    delay: float,
    callback: Callable[..., object],
    *args: Any,
    loop: asyncio.AbstractEventLoop | None = None,
) -> float:
    """Run `callback(*args)` on `loop` (the running one by default) `delay` seconds from now;
    the loop time it runs at.

    Never earlier, as `loop.call_later`; a timer several seconds ahead costs a few more
    wake-ups of the loop (three for 10 s). Like `call_at`, call it from the loop's thread;
    there is no handle to cancel it with (the worker never cancels a local timer).
    """
    loop = loop or asyncio.get_running_loop()
    when = loop.time() + max(delay, 0.0)
    _approach(loop, when, callback, args)
    return when


def _approach(
    loop: asyncio.AbstractEventLoop,
    when: float,
    callback: Callable[..., object],
    args: tuple[Any, ...],
) -> None:
    left = when - loop.time()
    if left <= FINAL_SLEEP:
        loop.call_at(when, callback, *args)
    else:
        ahead = max(FINAL_SLEEP / 2, MARGIN * left)
        loop.call_at(when - ahead, _approach, loop, when, callback, args)
