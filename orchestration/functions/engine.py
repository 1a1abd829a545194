"""The engine of one app in one process: its task hub, workers and client.

Created lazily on the event loop that first needs it (the Functions host's, or Azure's
Python worker's), because storage connections belong to a loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from orchestration.client import DurableOrchestrationClient, ManagementUrls
from orchestration.functions.activity_worker import ActivityWorker
from orchestration.functions.delivery import Delivery
from orchestration.functions.loop_watch import LoopWatch
from orchestration.functions.orchestrator import OrchestratorWorker
from orchestration.functions.registry import Registry
from orchestration.functions.settings import EngineSettings
from orchestration.functions.step_runner import OrchestratorBlockedError
from orchestration.functions.wiring import Workers, build_workers
from orchestration.storage.faults import FaultInjector
from orchestration.storage.hub import InstanceState, TaskHub
from orchestration.storage.mailbox import Mailbox
from orchestration.storage.messages import ControlMessage

log = logging.getLogger("orchestration.engine")


@dataclass
class _Runtime:
    loop: asyncio.AbstractEventLoop
    hub: TaskHub
    workers: Workers
    watch: LoopWatch

    @property
    def orchestrators(self) -> OrchestratorWorker:
        return self.workers.orchestrators

    @property
    def activities(self) -> ActivityWorker:
        return self.workers.activities

    @property
    def delivery(self) -> Delivery:
        return self.workers.delivery


class Engine:
    """Lazily wires storage, workers and client for one app."""

    def __init__(
        self, registry: Registry, settings: EngineSettings, *, hub: TaskHub | None = None
    ) -> None:
        """`hub`: use this task hub instead of connecting from the settings (tests, tools)."""
        self.registry = registry
        self.settings = settings
        self._hub = hub
        self._runtime: _Runtime | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    async def runtime(self) -> _Runtime:
        loop = asyncio.get_running_loop()
        if self._runtime is not None and self._runtime.loop is loop:
            return self._runtime
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        async with self._lock:
            if self._runtime is not None and self._runtime.loop is not loop:
                self._runtime.watch.stop()  # a runtime of a loop that is gone
                self._runtime.orchestrators.close()
            if self._runtime is None or self._runtime.loop is not loop:
                hub = self._hub or TaskHub.from_connection_string(
                    self.settings.connection_string,
                    self.settings.hub_name,
                    faults=FaultInjector.from_environment(),
                    payload_threshold=self.settings.payload_threshold,
                )
                await hub.create_if_not_exists()
                workers = build_workers(hub, self.registry, self.settings, mailbox=Mailbox())
                watch = LoopWatch(loop, describe=workers.activities.describe_running)
                watch.start()
                self._runtime = _Runtime(loop, hub, workers, watch)
                log.info("task hub %s ready", self.settings.hub_name)
        return self._runtime

    async def aclose(self) -> None:
        """Close this process's storage connections (the local host calls it on stop)."""
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.watch.stop()
            runtime.orchestrators.close()
        if runtime is not None and runtime.loop is asyncio.get_running_loop():
            await runtime.activities.aclose()
            await runtime.hub.close()

    async def client(
        self, base_url: str | None = None, *, keyless: bool = False
    ) -> DurableOrchestrationClient:
        """A client of the hub; its URLs point at `base_url`. `keyless`: hand out link URLs
        whatever key the request carried (it came in through a link)."""
        runtime = await self.runtime()
        urls = ManagementUrls(
            base_url or f"http://localhost:7071/{self.settings.route_prefix}", keyless=keyless
        )
        links = await runtime.hub.instance_links()
        return DurableOrchestrationClient(
            runtime.hub,
            urls,
            local_start=self._start_locally,
            links=links,
            mailbox=runtime.orchestrators.mailbox,
            default_version=self.settings.versioning.default_version,
        )

    async def _start_locally(self, state: InstanceState, message: ControlMessage) -> None:
        """Create a new instance by running its first step in this process.

        The step's commit creates the instance, so a start costs one storage call. No queue
        message stands behind the work that follows (its local activities): while it runs,
        the instance's state row carries a wake-up time, and the timer sweeper wakes the
        instance if this process dies (OrchestratorWorker.start).
        """
        runtime = await self.runtime()
        if not self.settings.versioning.can_run(state.version):
            # A version this worker may not run (given to start_new): queue it for one that
            # may, or for this worker's versionFailureStrategy.
            await self._create_queued(runtime.hub, state, message)
            return
        committed, finished = runtime.orchestrators.start(state, message)
        try:
            await committed
        except OrchestratorBlockedError:
            # Its first step blocked: create it the queued way, so that its steps are
            # retried through the queue and it ends Failed after the dequeue limit.
            self._spawn(_settle(finished, None))
            await self._create_queued(runtime.hub, state, message)
            return
        except BaseException:
            self._spawn(_settle(finished, None))  # the same failure: the caller has it
            raise
        self._spawn(_settle(finished, state.instance_id))

    @staticmethod
    async def _create_queued(hub: TaskHub, state: InstanceState, message: ControlMessage) -> None:
        await hub.create_instance(
            state.name,
            state.instance_id,
            state.input,
            now=state.created_at,
            version=state.version,
            parent=state.parent,
            execution_id=state.execution_id,
            message_id=message.message_id,
            trace=state.trace,
        )

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


async def _settle(future: asyncio.Future[None], instance_id: str | None) -> None:
    """Wait for the rest of a local start's work: no caller waits for it, so a failure is
    logged here. The instance is repaired: its worker asked for a wake-up if sends failed,
    its state row's wake-up time guards local work, and the sweeper wakes quiet instances."""
    try:
        await future
    except Exception as error:
        if instance_id is None:
            return
        log.warning(
            "a locally started instance's work failed after its first commit (%s: %s); it "
            "will be woken to repair it",
            type(error).__name__,
            error,
            extra={"instance_id": instance_id, "event": "local_start_failed"},
        )
