"""What a test run started is stopped however the run ends.

Fixture teardowns stop what their fixture started, but pytest killed by SIGTERM or SIGHUP
(whose default action ends the process on the spot) runs none of them, and a fixture that
fails half-way through its set-up has no teardown at all. So every process a fixture or the
chaos harness starts is also tracked here, and what is still tracked is stopped at
interpreter exit; `stop_on_signals` turns SIGTERM and SIGHUP into KeyboardInterrupt, the way
out on which pytest (and asyncio.run) run the teardowns. SIGKILL leaves no time for any of
this: there the children's death signal does the work (orchestration.host.lifetime).
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType

Handler = Callable[[int, FrameType | None], object] | int | None

_tracked: dict[int, tuple[object, Callable[[], object]]] = {}


def track(owner: object, stop: Callable[[], object]) -> None:
    """Call `stop()` at exit unless `untrack(owner)` comes first (it stops its own)."""
    _tracked[id(owner)] = (owner, stop)


def untrack(owner: object) -> None:
    """`owner` has stopped what it started."""
    _tracked.pop(id(owner), None)


def stop_all() -> None:
    """Stop everything still tracked, the latest first (hosts before the Azurite they use)."""
    while _tracked:
        _, (owner, stop) = _tracked.popitem()
        try:
            stop()
        except Exception as err:
            print(f"stopping {owner!r} at exit failed: {err!r}", file=sys.stderr)


atexit.register(stop_all)


@contextlib.contextmanager
def stop_on_signals(signums: tuple[int, ...] = (signal.SIGTERM, signal.SIGHUP)) -> Iterator[None]:
    """While inside: the first of `signums` raises KeyboardInterrupt in the main thread; any
    later one is ignored, so it cannot cut the teardowns short (SIGKILL still ends it all)."""
    stopping = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    previous: dict[int, Handler] = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, signal.SIG_DFL if old is None else old)
