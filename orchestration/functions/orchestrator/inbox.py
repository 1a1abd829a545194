"""The worker's inbox: deliveries per instance, coalesced, one drain at a time per instance.

Messages for one instance that arrive while its step runs wait here and are stepped together
next (many activity results become one step). Each delivery is done once its effect is
committed and the messages its step implies are sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from orchestration.functions.orchestrator.cache import SessionCache
from orchestration.storage.hub import InstanceState
from orchestration.storage.messages import ControlMessage
from orchestration.telemetry import tracing


@dataclass(slots=True)
class Arrival:
    """One control message for an instance, and the futures of those waiting on it."""

    message: ControlMessage
    dequeue_count: int
    done: asyncio.Future[None]
    # True when an undeleted queue message stands behind this delivery until it is done:
    # only then may the step's activities run here, since a crash brings that message back.
    durable: bool = True
    # A local start's caller waits for the step's commit (not for its later local rounds).
    committed: asyncio.Future[InstanceState] | None = None
    # No queue message stands behind this work (a local start and its later rounds): the
    # commits guard it instead, with the state row's wake-up time (InstanceState.wake_at).
    row_guarded: bool = False


# Processes one batch of an instance's arrivals; the sends it starts go into the list.
Process = Callable[[str, list[Arrival], list[asyncio.Future[None]]], Awaitable[None]]


class Inbox:
    """Queues arrivals per instance and drains each instance's queue in one task."""

    def __init__(self, process: Process, cache: SessionCache) -> None:
        self._process = process
        self._cache = cache
        self._waiting: dict[str, list[Arrival]] = {}
        self._running: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def put(self, arrival: Arrival) -> None:
        instance_id = arrival.message.instance_id
        self._waiting.setdefault(instance_id, []).append(arrival)
        if instance_id not in self._running:
            self._running.add(instance_id)
            self.spawn(self._drain(instance_id))

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background, keeping a reference until it ends."""
        # Not under the span of whatever request or invocation spawned it (a local start's
        # drain runs the instance's later steps too).
        task = asyncio.get_running_loop().create_task(work, context=tracing.detached_context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, instance_id: str) -> None:
        try:
            while True:
                batch = self._waiting.pop(instance_id, None)
                if not batch:
                    return
                # The sends a step implies run on while the instance's next batch is
                # stepped (a locally fired timer need not wait for them); each delivery is
                # done once its own commits and sends are.
                sends: list[asyncio.Future[None]] = []
                failure: Exception | None = None
                try:
                    await self._process(instance_id, batch, sends)
                except Exception as error:
                    failure = error
                    self._cache.drop(instance_id)
                    self._cache.drop_seed(instance_id)
                for arrival in batch:
                    if arrival.committed is not None and not arrival.committed.done():
                        self._cache.drop_seed(instance_id)
                        arrival.committed.set_exception(
                            failure
                            or RuntimeError(f"the start of {instance_id!r} was not committed")
                        )
                if sends:
                    self.spawn(_settle_after(batch, sends, failure))
                else:
                    _settle(batch, failure)
        finally:
            self._running.discard(instance_id)


async def _settle_after(
    batch: list[Arrival], sends: list[asyncio.Future[None]], failure: Exception | None
) -> None:
    for outcome in await asyncio.gather(*sends, return_exceptions=True):
        if failure is None and isinstance(outcome, Exception):
            failure = outcome
    _settle(batch, failure)


def _settle(batch: list[Arrival], failure: Exception | None) -> None:
    for arrival in batch:
        if arrival.done.done():
            continue
        if failure is None:
            arrival.done.set_result(None)
        else:
            arrival.done.set_exception(failure)
