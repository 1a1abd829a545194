"""Near durable timers fire on time however long the loop sleeps before them.

The kernel wakes a sleeping poll late by 0.1 % of its timeout; `call_later_precisely` must
approach a far moment in steps so that the last sleep, and so the lateness, stays short.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from typing import Any

import pytest

from orchestration.functions.precise_timers import FINAL_SLEEP, call_later_precisely

KERNEL_SLACK = 0.001  # Linux's select_estimate_accuracy for a normal task


class SlackLoop:
    """A loop clock whose every sleep ends late by the kernel's slack for its length."""

    def __init__(self) -> None:
        self.now = 0.0
        self.wake_ups = 0
        self._handles: list[tuple[float, int, Callable[..., object], tuple[Any, ...]]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> None:
        heapq.heappush(self._handles, (when, len(self._handles) + self.wake_ups, callback, args))

    def run(self) -> None:
        while self._handles:
            when, _, callback, args = heapq.heappop(self._handles)
            sleep = max(when - self.now, 0.0)
            self.now += sleep * (1 + KERNEL_SLACK)
            self.wake_ups += 1
            callback(*args)


@pytest.mark.parametrize("delay", [0.005, 0.5, 2.0, 10.0, 120.0])
def test_a_timer_far_ahead_fires_as_late_as_a_short_sleep_would(delay: float) -> None:
    loop = SlackLoop()
    fired: list[float] = []
    call_later_precisely(delay, lambda: fired.append(loop.now), loop=loop)  # type: ignore[arg-type]
    loop.run()
    assert len(fired) == 1
    lateness = fired[0] - delay
    assert 0 <= lateness <= FINAL_SLEEP * KERNEL_SLACK + 1e-9
    assert loop.wake_ups <= 6  # a few approach steps, not a busy wait


async def test_a_precise_timer_never_fires_before_its_moment() -> None:
    loop = asyncio.get_running_loop()
    due = loop.time() + 0.05
    fired = asyncio.Event()
    seen: list[float] = []

    def fire(tag: str) -> None:
        seen.append(loop.time())
        assert tag == "timer"
        fired.set()

    call_later_precisely(0.05, fire, "timer")
    await asyncio.wait_for(fired.wait(), 5)
    assert seen[0] >= due
