"""The workload driver, the same for every engine: an engine supplies four coroutines.

    chain()          start a 3-activity chain and wait for its result (one caller's round)
    one()            start a 1-activity workflow and wait for its result
    fan_out(n)       start a fan-out/fan-in of n activities and wait for its result
    sleepers(delays) start one workflow per delay at once, each sleeping a durable timer of
                     that many seconds; return each one's lateness in seconds (when the
                     workflow resumed minus when its timer was due, from its own clock)

Standard library only (it runs in both virtual environments).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from common import (
    CHAIN_CALLERS,
    CHAIN_MANY_CALLERS,
    CHAIN_ONE_CALLER,
    FAN_OUTS,
    LATENCY_RUNS,
    WARMUP,
    EngineResult,
    percentile,
    timer_delays,
)


@dataclass
class Engine:
    chain: Callable[[], Awaitable[object]]
    one: Callable[[], Awaitable[object]]
    fan_out: Callable[[int], Awaitable[object]]
    sleepers: Callable[[list[float]], Awaitable[list[float]]]
    # Called around each workload (e.g. to count CPU or storage calls); optional.
    before: Callable[[str], Awaitable[None]] | None = None
    after: Callable[[str, int], Awaitable[None]] | None = None


def use_threads(count: int = 64) -> None:
    """Enough threads for blocking clients run through asyncio.to_thread."""
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(count))


async def _timed(
    result: EngineResult, engine: Engine, name: str, activities: int, work: Awaitable[object]
) -> float:
    if engine.before is not None:
        await engine.before(name)
    started = time.perf_counter()
    await work
    elapsed = time.perf_counter() - started
    if engine.after is not None:
        await engine.after(name, activities)
    return elapsed


async def _callers(engine: Engine, total: int, callers: int) -> None:
    remaining = [total]

    async def caller() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            await engine.chain()

    await asyncio.gather(*(caller() for _ in range(callers)))


async def _attempt(result: EngineResult, name: str, work: Callable[[], Awaitable[None]]) -> None:
    try:
        await work()
    except Exception as error:
        result.errors[name] = f"{type(error).__name__}: {error}"[:300]
        result.save()
        print(f"[{result.engine}] {name} failed: {result.errors[name]}", flush=True)


async def run_all(result: EngineResult, engine: Engine, *, timeout: float = 120.0) -> None:
    """Warm up, then every workload in turn, each bounded by `timeout` seconds."""

    async def bounded(work: Awaitable[object]) -> object:
        return await asyncio.wait_for(work, timeout)

    async def warmup() -> None:
        await bounded(_callers(engine, WARMUP, 4))
        await bounded(engine.fan_out(10))

    async def chain_1() -> None:
        elapsed = await _timed(
            result, engine, "chain_1", 3 * CHAIN_ONE_CALLER,
            bounded(_callers(engine, CHAIN_ONE_CALLER, 1)),
        )  # fmt: skip
        result.record("chain_1", CHAIN_ONE_CALLER / elapsed)

    async def chain_16() -> None:
        elapsed = await _timed(
            result, engine, "chain_16", 3 * CHAIN_MANY_CALLERS,
            bounded(_callers(engine, CHAIN_MANY_CALLERS, CHAIN_CALLERS)),
        )  # fmt: skip
        result.record("chain_16", CHAIN_MANY_CALLERS / elapsed)

    def fan_out(n: int) -> Callable[[], Awaitable[None]]:
        async def work() -> None:
            elapsed = await _timed(result, engine, f"fanout_{n}", n, bounded(engine.fan_out(n)))
            result.record(f"fanout_{n}", elapsed)

        return work

    async def latency() -> None:
        await asyncio.sleep(1.0)  # let the system go idle
        samples = []
        for _ in range(LATENCY_RUNS):
            started = time.perf_counter()
            await bounded(engine.one())
            samples.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.05)
        result.extra["latency_ms_samples"] = [round(s, 2) for s in samples]
        result.record("latency_p50", percentile(samples, 50))
        result.record("latency_p99", percentile(samples, 99))

    async def timers() -> None:
        delays = timer_delays()
        lateness = await bounded(engine.sleepers(delays))
        assert isinstance(lateness, list) and len(lateness) == len(delays), "missing timers"
        millis = [late * 1000 for late in lateness]
        result.extra["timer_lateness_ms"] = {
            "min": round(min(millis), 2),
            "max": round(max(millis), 2),
            "negative": sum(1 for m in millis if m < 0),
        }
        result.record("timer_p50", percentile(millis, 50))
        result.record("timer_p99", percentile(millis, 99))

    await _attempt(result, "warmup", warmup)
    await _attempt(result, "chain_1", chain_1)
    await _attempt(result, "chain_16", chain_16)
    for n in FAN_OUTS:
        await _attempt(result, f"fanout_{n}", fan_out(n))
    await _attempt(result, "latency", latency)
    await _attempt(result, "timers", timers)
