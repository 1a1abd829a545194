"""A watch on the engine's event loop: code that blocks it is named in the log.

Orchestrator code runs in threads (`StepRunner`), but an `async def` activity runs on the
loop, and one that calls `time.sleep` or blocking I/O stops everything else in the process
(HTTP, timers, other instances) until it returns. A thread notices when the loop has not
turned for `limit` seconds, takes the loop thread's stack and logs it, naming the activity
and instance when an async activity is the one running.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable

log = logging.getLogger("orchestration.engine")

BEAT = 0.1


class LoopWatch:
    """Logs, once per episode, when the loop has been blocked for `limit` seconds."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        limit: float = 2.0,
        describe: Callable[[asyncio.Task[object] | None], str | None] = lambda _task: None,
    ) -> None:
        self.loop = loop
        self.limit = limit
        self.describe = describe
        self.episodes = 0
        self._last_beat = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop_thread = 0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start watching; call on the loop's thread."""
        self._loop_thread = threading.get_ident()
        self._beat()
        self._thread = threading.Thread(target=self._watch, name="loop-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()

    def _beat(self) -> None:
        self._last_beat = time.monotonic()
        if not self._stop.is_set():
            self._handle = self.loop.call_later(BEAT, self._beat)

    def _watch(self) -> None:
        blocked_since: float | None = None
        while not self._stop.wait(BEAT):
            lag = time.monotonic() - self._last_beat
            if lag < self.limit:
                if blocked_since is not None:
                    log.warning(
                        "the event loop runs again after %.1f s", time.monotonic() - blocked_since
                    )
                blocked_since = None
                continue
            if blocked_since is None:
                blocked_since = self._last_beat
                self.episodes += 1
                self._report(lag)

    def _report(self, lag: float) -> None:
        frame = sys._current_frames().get(self._loop_thread)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "(unknown)"
        try:
            task = asyncio.current_task(self.loop)
        except RuntimeError:
            task = None
        culprit = self.describe(task)
        if culprit is not None:
            log.error(
                "%s has blocked the event loop for %.1f s: an async activity must not call "
                "blocking code (time.sleep, blocking I/O). Await instead, or make it a plain "
                "def, which runs in a thread. It is here:\n%s",
                culprit,
                lag,
                stack,
                extra={"event": "loop_blocked"},
            )
        else:
            log.error(
                "the event loop has been blocked for %.1f s (nothing else in this process "
                "runs meanwhile). It is here:\n%s",
                lag,
                stack,
                extra={"event": "loop_blocked"},
            )
