"""Run many sends with a bounded number in flight (a fan-out of 100,000 must not open
100,000 requests, or hold 100,000 waiting coroutines, at once)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def run_bounded(
    items: Iterable[T], work: Callable[[T], Awaitable[None]], limit: int
) -> list[BaseException]:
    """Run `work(item)` for every item, at most `limit` at a time; return the failures
    (every item is tried, whatever happens to the others)."""
    iterator = iter(items)
    failures: list[BaseException] = []

    async def lane() -> None:
        for item in iterator:
            try:
                await work(item)
            except Exception as error:
                failures.append(error)

    await asyncio.gather(*(lane() for _ in range(max(1, limit))))
    return failures
