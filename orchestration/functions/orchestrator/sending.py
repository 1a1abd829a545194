"""Carrying out a step's actions: its outgoing messages, sent patiently and boundedly.

`core.outbox` says what a step's actions send; this sends it. Activities go out packed into
work items (a wide fan-out's share them); near timers are handed to this process's local
timers, farther ones become delayed queue messages or rows of the timers table; a child
is created (or its refusal reported to the parent); events go to their instances. Every send
is retried while storage is unreachable or throttles, a bounded number at once; a give-up is
logged with the instance id and asks for a repair.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from orchestration.azure import StorageError
from orchestration.core.actions import Action
from orchestration.core.outbox import (
    DeliverEvent,
    FireTimer,
    Outgoing,
    RunActivity,
    Sender,
    StartChild,
    child_refused,
    outgoing,
)
from orchestration.functions.bounded import run_bounded
from orchestration.functions.orchestrator.options import WorkerOptions
from orchestration.functions.orchestrator.stats import WorkerStats
from orchestration.storage.hub import MAX_QUEUE_DELAY, InstanceExistsError, InstanceState, TaskHub
from orchestration.storage.messages import (
    ActivityBatch,
    ActivityMessage,
    ControlMessage,
    WorkItem,
    pack_activities,
)
from orchestration.telemetry import tracing
from orchestration.telemetry.links import TraceLink

log = logging.getLogger("orchestration.orchestrator")

REPAIR_DELAY = timedelta(seconds=15)
T = TypeVar("T")


def is_transient(error: StorageError) -> bool:
    """An outage or throttling (no answer, 408, 429, 5xx): worth trying again."""
    return error.status == 0 or error.status >= 500 or error.status in (408, 429)


class OutagePatience:
    """Backoff while storage is unreachable (refused connections, 5xx), up to a deadline."""

    def __init__(self, seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._give_up = self._loop.time() + seconds
        self.pause = 0.25

    async def wait(self, error: StorageError, instance_id: str | None = None) -> None:
        """Sleep before the next try; re-raise `error` if it is no outage or time is up.

        With `instance_id`, the retry is logged.
        """
        if not is_transient(error) or self._loop.time() > self._give_up:
            raise error
        if instance_id is not None:
            log.warning(
                "storage unavailable (%s); retrying in %.1f s",
                error,
                self.pause,
                extra={"instance_id": instance_id, "event": "storage_retry"},
            )
        await asyncio.sleep(self.pause)
        self.pause = min(self.pause * 2, 5.0)


def sender_of(state: InstanceState) -> Sender:
    return Sender(state.instance_id, state.name, state.execution_id, state.parent)


def activity_messages(state: InstanceState, runs: Sequence[RunActivity]) -> list[ActivityMessage]:
    link = TraceLink.decode(state.trace)
    traceparent = link.span.traceparent if link is not None else None
    return [
        ActivityMessage(
            state.instance_id,
            state.execution_id,
            run.task_id,
            run.name,
            run.input,
            run.attempt,
            traceparent,
        )
        for run in runs
    ]


class Outbox:
    """Sends what a worker's steps imply."""

    def __init__(
        self,
        hub: TaskHub,
        options: WorkerOptions,
        stats: WorkerStats,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        fire_locally: Callable[[ControlMessage, datetime], None],
    ) -> None:
        self.hub = hub
        self.options = options
        self.stats = stats
        self._spawn = spawn
        self._fire_locally = fire_locally

    async def carry_out(
        self, state: InstanceState, actions: Sequence[Action], now: datetime
    ) -> None:
        """Send what the actions imply (a wide fan-out's activities packed into work items)."""
        sender = sender_of(state)
        found = outgoing(sender, actions, now)
        runs = [item for item in found if isinstance(item, RunActivity)]
        items: list[Outgoing | WorkItem] = [i for i in found if not isinstance(i, RunActivity)]
        items += pack_activities(activity_messages(state, runs)) if runs else []
        self.stats.queued_activities += len(runs)

        async def send(item: Outgoing | WorkItem) -> None:
            await self._send(sender, item, now, state.trace)

        await self.send_all(state.instance_id, items, send)

    async def _send(
        self, sender: Sender, item: Outgoing | WorkItem, now: datetime, trace: str | None = None
    ) -> None:
        hub = self.hub
        if isinstance(item, (ActivityMessage, ActivityBatch)):
            await hub.send_activity(item)
        elif isinstance(item, FireTimer):
            message = ControlMessage(
                sender.instance_id, item.event, sender.execution_id, item.message_id
            )
            delay = item.fire_at - now
            if delay <= self.options.local_timer_horizon:
                self._fire_locally(message, item.fire_at)
            elif delay <= MAX_QUEUE_DELAY:
                await hub.send_control(message, delay)
            else:
                await hub.store_far_timer(message, item.fire_at)
        elif isinstance(item, StartChild):
            try:
                await hub.create_instance(
                    item.name,
                    item.instance_id,
                    item.input,
                    now=now,
                    version=item.version,
                    parent=item.parent,
                    execution_id=uuid.uuid4().hex,
                    message_id=item.message_id,
                    trace=tracing.child_link(trace),
                )
            except InstanceExistsError as error:
                await self._deliver(child_refused(sender, item, str(error), now))
        elif isinstance(item, DeliverEvent):
            await self._deliver(item)

    async def _deliver(self, item: DeliverEvent) -> None:
        if item.message_id is None:
            message = ControlMessage(item.instance_id, item.event, item.execution_id)
        else:
            message = ControlMessage(
                item.instance_id, item.event, item.execution_id, item.message_id
            )
        await self.hub.send_control(message)

    async def send_all(
        self, instance_id: str, items: Sequence[T], send: Callable[[T], Awaitable[None]]
    ) -> None:
        """Send every item, each retried while storage is unreachable (receivers tolerate a
        duplicate), a bounded number at once. If some still fail, say so with the
        instance id, ask for a repair, and raise: the step's trigger message (if any) comes
        back and its worker re-sends the open work; otherwise the sweeper does."""
        if not items:
            return

        async def patiently(item: T) -> None:
            patience = OutagePatience(self.options.send_patience)
            while True:
                try:
                    await send(item)
                    return
                except StorageError as error:
                    await patience.wait(error)
                    self.stats.outage_retries += 1

        failures = await run_bounded(items, patiently, self.options.send_concurrency)
        if not failures:
            return
        self.stats.unsent += len(failures)
        log.error(
            "%d of %d message(s) of a step could not be sent (%s: %s); the instance will be "
            "repaired by re-sending its open work",
            len(failures),
            len(items),
            type(failures[0]).__name__,
            failures[0],
            extra={"instance_id": instance_id, "event": "send_failed"},
        )
        self._spawn(self.request_repair(instance_id))
        raise failures[0]

    async def request_repair(self, instance_id: str, delay: timedelta = REPAIR_DELAY) -> None:
        """A wake-up soon, so that the instance's open work is sent again (best effort: if
        this fails too, the quiet-instance sweep repairs it after `repairAfter`)."""
        try:
            await self.hub.send_control(ControlMessage(instance_id, None, None), delay)
        except Exception as error:
            log.warning(
                "could not ask for a repair (%s); the sweeper will wake the instance",
                error,
                extra={"instance_id": instance_id, "event": "repair_request_failed"},
            )
