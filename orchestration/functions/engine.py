"""The engine of one app in one process: its task hub, workers and client.

Created lazily on the event loop that first needs it (the Functions host's, or Azure's
Python worker's), because storage connections belong to a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from orchestration.client import DurableOrchestrationClient, ManagementUrls
from orchestration.functions.activity_worker import ActivityWorker
from orchestration.functions.burst import wire_workers
from orchestration.functions.orchestrator_worker import OrchestratorWorker
from orchestration.functions.registry import Registry
from orchestration.functions.settings import EngineSettings
from orchestration.storage.faults import FaultInjector
from orchestration.storage.hub import InstanceState, TaskHub
from orchestration.storage.messages import ControlMessage

log = logging.getLogger("orchestration.engine")


@dataclass
class _Runtime:
    loop: asyncio.AbstractEventLoop
    hub: TaskHub
    orchestrators: OrchestratorWorker
    activities: ActivityWorker


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
            if self._runtime is None or self._runtime.loop is not loop:
                hub = self._hub or TaskHub.from_connection_string(
                    self.settings.connection_string,
                    self.settings.hub_name,
                    faults=FaultInjector.from_environment(),
                    payload_threshold=self.settings.payload_threshold,
                )
                await hub.create_if_not_exists()
                orchestrators, activities = wire_workers(
                    hub,
                    self.registry,
                    local_activities=self.settings.local_activities,
                    direct_results=self.settings.direct_results,
                )
                orchestrators.local_batch = self.settings.local_activity_max_batch
                self._runtime = _Runtime(loop, hub, orchestrators, activities)
                log.info("task hub %s ready", self.settings.hub_name)
        return self._runtime

    async def aclose(self) -> None:
        """Close this process's storage connections (the local host calls it on stop)."""
        runtime, self._runtime = self._runtime, None
        if runtime is not None and runtime.loop is asyncio.get_running_loop():
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
            runtime.hub, urls, local_start=self._start_locally, links=links
        )

    async def _start_locally(self, state: InstanceState, message: ControlMessage) -> None:
        """Create a new instance by running its first step in this process.

        The step's commit creates the instance, so a start costs one storage call. No queue
        message stands behind the work that follows (its local activities): while it runs,
        the instance's state row carries a wake-up time, and the timer sweeper wakes the
        instance if this process dies (OrchestratorWorker.start).
        """
        runtime = await self.runtime()
        committed, finished = runtime.orchestrators.start(state, message)
        try:
            await committed
        finally:
            self._spawn(_settle(finished))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


async def _settle(future: asyncio.Future[None]) -> None:
    """Wait for a future whose failure was reported elsewhere."""
    with contextlib.suppress(Exception):
        await future
