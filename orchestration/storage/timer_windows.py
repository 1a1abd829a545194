"""When this process fires durable timers, so that reads which can wait keep out of their way.

A start-and-wait starter polls its instance's state row every retry interval, to see commits
made by other processes. With many waits open, those reads keep the engine's loop busy a good
part of the time, and a near timer due while the loop handles a read's reply, or while the
process is descheduled doing so, fires late. Such a read can come a few milliseconds later at
no cost: it is put off until just after a timer due around then (`bench/timer_bench.py`
measures the timers' lateness; the README holds the figures). It lives in the engine's
`Mailbox`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

# A read started this long before a timer is due may still be answered when it fires.
BEFORE = 0.004
AFTER = 0.001  # a timer's step starts within this of its due time
MOST = 0.02  # a read is put off by at most this, whatever the timers


@dataclass
class TimerWindows:
    """The due times (event loop clock) of the timers this process will fire."""

    _due: list[float] = field(default_factory=list)

    def expect(self, when: float, now: float) -> None:
        """A timer will fire here at loop time `when` (it is `now`)."""
        self._forget_before(now)
        bisect.insort(self._due, when)

    def quiet_delay(self, now: float) -> float:
        """How long a read that can wait should wait at loop time `now`: until just after
        the timers due within `BEFORE` (and those due in a row after them), at most `MOST`."""
        self._forget_before(now)
        until = now
        for due in self._due:
            if due - BEFORE > until or until - now >= MOST:
                break
            until = due + AFTER
        return min(until - now, MOST)

    def _forget_before(self, now: float) -> None:
        del self._due[: bisect.bisect_left(self._due, now - AFTER)]

    def __len__(self) -> int:
        return len(self._due)
