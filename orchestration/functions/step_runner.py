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


@dataclass(eq=False)
class _Step:
    instance_id: str
    session: Watched
    waiter: asyncio.Future[Any]
    started: float
    last_change: float
    seen: int
    running: _Running


class StepRunner:
    """Runs orchestrator steps in a thread pool and abandons those that block.

    One watch per runner checks every running step `_POLL` apart (a timer only while steps
    run), so a step costs the thread hop and nothing more.
    """

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
        self._steps: set[_Step] = set()
        self._watch: asyncio.TimerHandle | None = None

    def _new_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.threads, thread_name_prefix="orchestrator")

    async def run(self, instance_id: str, session: Watched, call: Callable[[], R]) -> R:
        """`call()` (a step or replay of `session`) in a thread; OrchestratorBlockedError
        if it blocks."""
        loop = asyncio.get_running_loop()
        running = _Running()
        waiter: asyncio.Future[R] = loop.create_future()

        def in_thread() -> None:
            running.thread = threading.current_thread()
            try:
                outcome = call()
            except BaseException as error:
                running.done = True
                loop.call_soon_threadsafe(_settle, waiter, None, error)
            else:
                running.done = True
                loop.call_soon_threadsafe(_settle, waiter, outcome, None)

        now = time.monotonic()
        step = _Step(instance_id, session, waiter, now, now, session.progress, running)
        self._steps.add(step)
        if self._watch is None:
            self._watch = loop.call_later(_POLL, self._check, loop)
        try:
            self._executor.submit(in_thread)
            return await waiter
        finally:
            self._steps.discard(step)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self._watch = None
        now = time.monotonic()
        for step in list(self._steps):
            if step.waiter.done():
                continue
            progress = step.session.progress
            if progress != step.seen:
                step.seen, step.last_change = progress, now
            if now - step.last_change >= self.stall_limit:
                self._abandon(step, "made no progress", now - step.last_change)
            elif now - step.started >= self.step_limit:
                self._abandon(step, "ran without finishing its step", now - step.started)
        if self._steps:
            self._watch = loop.call_later(_POLL, self._check, loop)

    def _abandon(self, step: _Step, why: str, seconds: float) -> None:
        running = step.running
        thread = running.thread
        frame = sys._current_frames().get(thread.ident) if thread and thread.ident else None
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "(unknown)"
        error = OrchestratorBlockedError(step.session.name, step.instance_id, seconds, stack, why)
        log.error(
            "%s",
            error,
            extra={"instance_id": step.instance_id, "event": "orchestrator_blocked"},
        )
        step.waiter.set_exception(error)
        self._steps.discard(step)
        if thread is not None and thread.ident is not None and not running.done:
            _interrupt(thread.ident)
        # The thread may not come back (a call that never returns): new steps get a fresh
        # pool, and the old one ends its threads as they finish.
        self.abandoned += 1
        old, self._executor = self._executor, self._new_pool()
        old.shutdown(wait=False)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _settle(waiter: asyncio.Future[Any], outcome: Any, error: BaseException | None) -> None:
    """Deliver a step's outcome, unless the step was abandoned meanwhile."""
    if waiter.done():
        return
    if error is not None:
        waiter.set_exception(error)
    else:
        waiter.set_result(outcome)
