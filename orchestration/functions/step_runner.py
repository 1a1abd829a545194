"""Orchestrator code runs in threads, watched: one that blocks never stalls the host.

An orchestrator's code is the user's: `time.sleep(30)` or a busy loop in it would, on the
event loop, freeze HTTP, timers and every other instance. So each step (and each replay)
runs in a thread of the engine's own pool while the loop awaits it, and a watch on the loop
checks the session's progress count (each resume of the generator and each durable API call
adds to it). A step whose count stands still for `stall_limit` (2 s, Temporal's deadlock
limit) is blocked: its stack is taken from the thread, the step fails with
`OrchestratorBlockedError` naming the orchestrator, the instance and that stack, and the
thread is interrupted (an asynchronous exception: it ends a busy loop at once, a sleeping
call when it returns). A thread that does not come back is left behind and the pool is
replaced, so capacity never shrinks. A step may also not run longer than `step_limit` in
all, however busy. The session of a failed step is never used again.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

log = logging.getLogger("orchestration.orchestrator")

R = TypeVar("R")
DEFAULT_STALL_LIMIT = 2.0
DEFAULT_STEP_LIMIT = 300.0
_POLL = 0.05


class Watched(Protocol):
    """What the watch reads of a running step: a session's progress count and name."""

    @property
    def progress(self) -> int: ...

    @property
    def name(self) -> str: ...


class OrchestratorBlockedError(RuntimeError):
    """An orchestrator step stopped making progress (or ran too long) and was abandoned."""

    def __init__(self, name: str, instance_id: str, seconds: float, stack: str, why: str) -> None:
        super().__init__(
            f"Orchestrator {name!r} (instance {instance_id!r}) {why} for {seconds:.1f} s; the "
            f"step was abandoned. Orchestrator code must not block (sleep, wait on I/O, loop "
            f"without yielding): use activities for work and create_timer for waiting. It "
            f"was here:\n{stack}"
        )
        self.orchestrator = name
        self.instance_id = instance_id
        self.stack = stack


class _Interrupt(BaseException):
    """Raised inside an abandoned step's thread (a BaseException, so that the user's
    `except Exception` does not swallow it)."""


@dataclass
class _Running:
    thread: threading.Thread | None = None
    done: bool = False


def _interrupt(thread_id: int) -> None:
    """Raise `_Interrupt` in the thread at its next bytecode (CPython's async exception)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(_Interrupt)
    )


class StepRunner:
    """Runs orchestrator steps in a thread pool and abandons those that block."""

    def __init__(
        self,
        *,
        threads: int = 4,
        stall_limit: float = DEFAULT_STALL_LIMIT,
        step_limit: float = DEFAULT_STEP_LIMIT,
    ) -> None:
        self.threads = threads
        self.stall_limit = stall_limit
        self.step_limit = step_limit
        self.abandoned = 0
        self._executor = self._new_pool()

    def _new_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.threads, thread_name_prefix="orchestrator")

    async def run(self, instance_id: str, session: Watched, call: Callable[[], R]) -> R:
        """`call()` (a step or replay of `session`) in a thread; OrchestratorBlockedError
        if it blocks."""
        loop = asyncio.get_running_loop()
        running = _Running()

        def in_thread() -> R:
            running.thread = threading.current_thread()
            try:
                return call()
            finally:
                running.done = True

        future = loop.run_in_executor(self._executor, in_thread)
        started = last_change = time.monotonic()
        seen = session.progress
        while True:
            done, _ = await asyncio.wait([future], timeout=_POLL)
            if done:
                return future.result()
            now = time.monotonic()
            progress = session.progress
            if progress != seen:
                seen, last_change = progress, now
            if now - last_change >= self.stall_limit:
                why = "made no progress"
                seconds = now - last_change
            elif now - started >= self.step_limit:
                why = "ran without finishing its step"
                seconds = now - started
            else:
                continue
            raise self._abandon(instance_id, session, running, future, why, seconds)

    def _abandon(
        self,
        instance_id: str,
        session: Watched,
        running: _Running,
        future: asyncio.Future[R],
        why: str,
        seconds: float,
    ) -> OrchestratorBlockedError:
        thread = running.thread
        frame = sys._current_frames().get(thread.ident) if thread and thread.ident else None
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "(unknown)"
        error = OrchestratorBlockedError(session.name, instance_id, seconds, stack, why)
        log.error(
            "%s",
            error,
            extra={"instance_id": instance_id, "event": "orchestrator_blocked"},
        )
        future.add_done_callback(_ignore_outcome)
        if thread is not None and thread.ident is not None and not running.done:
            _interrupt(thread.ident)
        # The thread may not come back (a call that never returns): new steps get a fresh
        # pool, and the old one ends its threads as they finish.
        self.abandoned += 1
        old, self._executor = self._executor, self._new_pool()
        old.shutdown(wait=False)
        return error

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: an abandoned step's outcome is nobody's
