"""A burst worker: drain the hub's queues in this process until the work is done, then stop.

The Functions host runs the engine's queue triggers in production; this runs the same
workers directly, for deterministic tests of a queue-driven system (arq's "burst" mode),
for benchmarks that measure the engine apart from any host, and for the CLI.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from orchestration.azure import QueueMessage, StorageError
from orchestration.functions.registry import Registry
from orchestration.functions.settings import EngineSettings
from orchestration.functions.wiring import Workers, build_workers
from orchestration.storage.hub import TaskHub

log = logging.getLogger("orchestration.burst")


@dataclass
class BurstStats:
    control_messages: int = 0
    work_items: int = 0
    failures: int = 0


class BurstWorker:
    """Receives from the control and work-item queues and hands each message to the same
    `Delivery` the Functions triggers use; only the polling is its own."""

    def __init__(
        self,
        hub: TaskHub,
        registry: Registry,
        *,
        batch_size: int = 32,
        visibility_timeout: int = 30,
        max_dequeue_count: int = 5,
        workers: Workers | None = None,
        local_activities: bool = True,
        direct_results: bool = True,
        settings: EngineSettings | None = None,
    ) -> None:
        """`settings` wire the workers (else the defaults with the three flags given)."""
        self.hub = hub
        self.registry = registry
        settings = settings or EngineSettings(
            hub_name=hub.names.hub,
            local_activities=local_activities,
            direct_results=direct_results,
            max_dequeue_count=max_dequeue_count,
        )
        self.workers = workers or build_workers(hub, registry, settings)
        self.orchestrators = self.workers.orchestrators
        self.activities = self.workers.activities
        self.batch_size = batch_size
        self.visibility_timeout = visibility_timeout
        self.stats = BurstStats()

    async def _run_one(self, queue: str, message: QueueMessage) -> None:
        delivery = self.workers.delivery
        # Queue text is base64 of the JSON (the Functions host's encoding); the delivery
        # takes either, and poisons what is neither.
        body = message.text.encode("utf-8")
        try:
            if queue == self.hub.names.control_queue:
                self.stats.control_messages += 1
                await delivery.control(body, message.dequeue_count)
            else:
                self.stats.work_items += 1
                await delivery.work_item(body, message.dequeue_count)
        except Exception:
            self.stats.failures += 1
            log.exception("message failed; it will be retried after its visibility timeout")
            return
        await self.hub.delete_message(queue, message)

    async def poll_once(self) -> int:
        """Receive one batch from each queue and process it; the number of messages."""
        names = self.hub.names
        try:
            batches = await self._receive_both()
        except StorageError as error:
            log.warning("cannot receive (%s); storage unavailable?", error)
            return 0
        jobs = [self._run_one(names.control_queue, m) for m in batches[0]]
        jobs += [self._run_one(names.work_item_queue, m) for m in batches[1]]
        if jobs:
            await asyncio.gather(*jobs)
        return len(jobs)

    async def _receive_both(self) -> tuple[list[QueueMessage], list[QueueMessage]]:
        names = self.hub.names
        return await asyncio.gather(
            self.hub.receive(names.control_queue, self.batch_size, self.visibility_timeout),
            self.hub.receive(names.work_item_queue, self.batch_size, self.visibility_timeout),
        )

    async def run_until(
        self,
        done: Callable[[], Awaitable[bool]] | None = None,
        *,
        idle_polls: int = 3,
        timeout: float = 60.0,
        idle_sleep: float = 0.05,
    ) -> None:
        """Poll until `done()` holds (or, without it, until the queues stay empty)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet = 0
        while loop.time() < deadline:
            handled = await self.poll_once()
            if done is not None and await done():
                return
            if handled:
                quiet = 0
                continue
            quiet += 1
            if done is None and quiet >= idle_polls:
                return
            await asyncio.sleep(idle_sleep)
        raise TimeoutError("burst worker did not finish in time")
