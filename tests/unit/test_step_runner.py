"""Orchestrator code that blocks is abandoned, named and interrupted; the loop keeps going."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from orchestration.functions.step_runner import OrchestratorBlockedError, StepRunner


class Session:
    """A stand-in for an OrchestrationSession: a name and a progress count."""

    def __init__(self) -> None:
        self.progress = 0
        self.name = "stuck"


def sleeps_in_user_code() -> None:
    time.sleep(3)


async def test_a_step_that_sleeps_is_abandoned_with_its_stack_while_the_loop_runs() -> None:
    runner = StepRunner(stall_limit=0.5)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    beating = asyncio.create_task(ticker())
    started = time.monotonic()
    with pytest.raises(OrchestratorBlockedError) as caught:
        await runner.run("inst-1", Session(), sleeps_in_user_code)
    beating.cancel()
    assert time.monotonic() - started < 1.5
    assert ticks > 20  # the loop kept running all along
    assert "sleeps_in_user_code" in caught.value.stack
    assert "'stuck'" in str(caught.value) and "'inst-1'" in str(caught.value)
    assert runner.abandoned == 1


async def test_a_busy_loop_is_interrupted() -> None:
    runner = StepRunner(stall_limit=0.3)
    stopped = threading.Event()

    def spin() -> None:
        try:
            while True:
                pass
        finally:
            stopped.set()

    with pytest.raises(OrchestratorBlockedError):
        await runner.run("inst-2", Session(), spin)
    assert await asyncio.to_thread(stopped.wait, 2.0)  # the thread left the loop


async def test_a_long_step_that_makes_progress_is_not_abandoned() -> None:
    runner = StepRunner(stall_limit=0.3)
    session = Session()

    def busy_but_progressing() -> str:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            session.progress += 1  # as each durable API call does
            time.sleep(0.01)
        return "done"

    assert await runner.run("inst-3", session, busy_but_progressing) == "done"
    assert runner.abandoned == 0


async def test_no_step_runs_longer_than_the_step_limit() -> None:
    runner = StepRunner(stall_limit=10, step_limit=0.5)
    session = Session()

    def endless() -> None:
        while True:
            session.progress += 1
            time.sleep(0.01)

    with pytest.raises(OrchestratorBlockedError, match="without finishing"):
        await runner.run("inst-4", session, endless)


async def test_steps_after_an_abandoned_one_still_run() -> None:
    runner = StepRunner(threads=1, stall_limit=0.3)
    with pytest.raises(OrchestratorBlockedError):
        await runner.run("inst-5", Session(), sleeps_in_user_code)
    assert await runner.run("inst-6", Session(), lambda: 42) == 42
