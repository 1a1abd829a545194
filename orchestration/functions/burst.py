"""A burst worker: drain the hub's queues in this process until the work is done, then stop.

The Functions host runs the engine's queue triggers in production; this runs the same
workers directly, for deterministic tests of a queue-driven system (arq's "burst" mode),
for benchmarks that measure the engine apart from any host, and for the CLI.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from orchestration.azure import QueueMessage, StorageError
from orchestration.functions.activity_worker import ActivityWorker
from orchestration.functions.orchestrator_worker import OrchestratorWorker
from orchestration.functions.registry import Registry
from orchestration.storage.hub import TaskHub
from orchestration.storage.mailbox import Mailbox
from orchestration.storage.messages import (
    ActivityBatch,
    ActivityMessage,
    ControlMessage,
    MalformedMessageError,
)

log = logging.getLogger("orchestration.burst")


def wire_workers(
    hub: TaskHub,
    registry: Registry,
    *,
    local_activities: bool,
    direct_results: bool,
    mailbox: Mailbox | None = None,
) -> tuple[OrchestratorWorker, ActivityWorker]:
    """The two workers of one process, wired to shortcut queue hops as the settings allow."""
    orchestrators = OrchestratorWorker(hub, registry, mailbox=mailbox)
    activities = ActivityWorker(
        hub, registry, apply_result=orchestrators.handle if direct_results else None
    )
    if local_activities:
        orchestrators.local_runner = activities.execute
    return orchestrators, activities


@dataclass
class BurstStats:
    control_messages: int = 0
    work_items: int = 0
    failures: int = 0
    poisoned: int = 0


class BurstWorker:
    """Receives from the control and work-item queues and runs the engine's workers."""

    def __init__(
        self,
        hub: TaskHub,
        registry: Registry,
        *,
        batch_size: int = 32,
        visibility_timeout: int = 30,
        max_dequeue_count: int = 5,
        orchestrators: OrchestratorWorker | None = None,
        activities: ActivityWorker | None = None,
        local_activities: bool = True,
        direct_results: bool = True,
    ) -> None:
        self.hub = hub
        self.registry = registry
        self.orchestrators, self.activities = wire_workers(
            hub, registry, local_activities=local_activities, direct_results=direct_results
        )
        if orchestrators is not None:
            self.orchestrators = orchestrators
        if activities is not None:
            self.activities = activities
        self.batch_size = batch_size
        self.visibility_timeout = visibility_timeout
        self.max_dequeue_count = max_dequeue_count
        self.stats = BurstStats()

    async def _poison(self, queue: str, message: QueueMessage, reason: str) -> None:
        self.stats.poisoned += 1
        log.error("poison message on %s: %s", queue, reason)
        await self.hub.queues.create_queue(f"{queue}-poison")
        await self.hub.queues.send(f"{queue}-poison", message.text)
        await self.hub.queues.delete(queue, message.id, message.pop_receipt)

    async def _run_one(self, queue: str, message: QueueMessage) -> None:
        try:
            decoded = await self.hub.decode_message(base64.b64decode(message.text))
        except (MalformedMessageError, ValueError) as error:
            await self._poison(queue, message, str(error))
            return
        try:
            if isinstance(decoded, ControlMessage):
                self.stats.control_messages += 1
                await self.orchestrators.handle(decoded, message.dequeue_count)
            elif isinstance(decoded, (ActivityMessage, ActivityBatch)):
                self.stats.work_items += 1
                await self.activities.handle_item(decoded, message.dequeue_count)
        except Exception:
            self.stats.failures += 1
            log.exception("message failed; it will be retried after its visibility timeout")
            if message.dequeue_count >= self.max_dequeue_count:
                await self._poison(queue, message, "failed too many times")
            return
        await self.hub.queues.delete(queue, message.id, message.pop_receipt)

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
            self.hub.queues.receive(
                names.control_queue, self.batch_size, visibility_timeout=self.visibility_timeout
            ),
            self.hub.queues.receive(
                names.work_item_queue, self.batch_size, visibility_timeout=self.visibility_timeout
            ),
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
