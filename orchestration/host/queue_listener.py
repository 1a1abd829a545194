"""Queue triggers and queue output bindings, with the Functions host's queue semantics.

Competing consumers: each listener receives batches of `batchSize`, fetches again once fewer
than `newBatchThreshold` are in flight, backs off from 100 ms to `maxPollingInterval` while
the queue is empty, deletes a message after success, makes it visible again after
`visibilityTimeout` on failure, and moves it to `<queue>-poison` after `maxDequeueCount`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
from typing import Any

from azure.functions.queue import QueueMessage

from orchestration.bindings.apply import BindingError
from orchestration.bindings.store import BindingTargetError, check_queue
from orchestration.bindings.values import decode_queue_message as decode_message
from orchestration.bindings.values import encode_queue_message as encode_message
from orchestration.bindings.values import queue_bodies as _to_bodies
from orchestration.host.app_loader import BindingSpec, FunctionSpec
from orchestration.host.binding_data import queue_binding_data
from orchestration.host.bindings import (
    BindingConfigError,
    BindingHandler,
    HostContext,
    Invocation,
    Listener,
    TriggerHandler,
)
from orchestration.host.settings import QueueOptions
from orchestration.host.storage import RawQueueMessage, StorageAccount
from orchestration.host.storage_bindings import (
    binding_scope,
    check_storage_binding,
    to_binding,
)

log = logging.getLogger("orchestration.host.queue")

MIN_POLLING_INTERVAL = 0.1
# Messages are hidden this long while a function runs, renewed at half-time; a failure then
# shortens it to visibilityTimeout. (The WebJobs SDK uses the same 10 minutes.)
RUN_LEASE_SECONDS = 600


def run_lease_seconds() -> int:
    """The in-flight lease; the ORCHESTRATION_QUEUE_LEASE_SECONDS setting shortens it, so that
    tests of crashed workers need not wait 10 minutes for a message to come back."""
    value = os.environ.get("ORCHESTRATION_QUEUE_LEASE_SECONDS")
    return max(2, int(value)) if value else RUN_LEASE_SECONDS


_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")


def queue_name_of(binding: BindingSpec, host: HostContext) -> str:
    """The binding's queue name with %Setting% references resolved, checked as Azure does."""
    raw = binding.get("queueName")
    if not raw:
        raise BindingConfigError(f"binding '{binding.name}' has no queueName")
    name = host.resolve(str(raw)).lower()
    if not _QUEUE_NAME.match(name):
        raise BindingConfigError(
            f"invalid queue name {name!r}: 3-63 lowercase letters, digits and single hyphens"
        )
    return name


class QueueOutputHandler(BindingHandler):
    """`queue` output: messages set on func.Out are enqueued after the function succeeded;
    `queueName` may hold binding expressions (`{name}`), resolved per invocation."""

    def validate(self, function: FunctionSpec, binding: BindingSpec, host: HostContext) -> None:
        if not binding.is_output or binding.is_input:
            raise BindingConfigError(f"binding '{binding.name}': queue bindings are output only")
        check_storage_binding(function, binding, host)

    async def write_output(
        self, binding: BindingSpec, value: Any, invocation: Invocation, host: HostContext
    ) -> None:
        scope = binding_scope(invocation, host)
        try:
            queue = check_queue(scope.text(to_binding(binding), "queueName") or "")
        except BindingTargetError as err:
            raise BindingError(f"binding '{binding.name}': {err}") from err
        account = host.storage_for(binding)
        encoding = host.host_json.queues.message_encoding
        for body in _to_bodies(value):
            await account.send(queue, encode_message(body, encoding))
        host.queue_notifier.notify(queue)


class QueueTriggerHandler(TriggerHandler):
    """`queueTrigger`: one competing-consumer listener per function."""

    def validate(self, function: FunctionSpec, host: HostContext) -> None:
        queue_name_of(function.trigger, host)
        host.connection_string(function.trigger.get("connection"))

    def create_listener(self, function: FunctionSpec, host: HostContext) -> Listener:
        return QueueListener(
            function=function,
            queue=queue_name_of(function.trigger, host),
            account=host.storage_for(function.trigger),
            options=host.host_json.queues,
            host=host,
        )


class QueueListener:
    """Polls one queue for one function and runs its messages concurrently."""

    def __init__(
        self,
        function: FunctionSpec,
        queue: str,
        account: StorageAccount,
        options: QueueOptions,
        host: HostContext,
    ) -> None:
        self.function = function
        self.queue = queue
        self.poison_queue = f"{queue}-poison"
        self.account = account
        self.options = options
        self.host = host
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._stopping = False
        self._wants_properties = function.uses_binding_data

    async def start(self) -> None:
        """Create the queue if needed and start polling."""
        await self.account.ensure_queue(self.queue)
        self._wake = self.host.queue_notifier.subscribe(self.queue)
        self._poller = asyncio.create_task(
            self._poll(), name=f"queue-listener:{self.function.name}"
        )

    async def stop(self, grace: float) -> None:
        """Stop polling; wait up to `grace` s for running messages, then release the rest."""
        self._stopping = True
        self._wake.set()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)

    async def _poll(self) -> None:
        delay = MIN_POLLING_INTERVAL
        ceiling = max(self.options.max_polling_interval.total_seconds(), MIN_POLLING_INTERVAL)
        while not self._stopping:
            if len(self._tasks) > self.options.new_batch_threshold:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                messages = await self.account.receive(
                    self.queue, self.options.batch_size, run_lease_seconds()
                )
            except Exception as err:
                log.warning("Polling queue '%s' failed: %s", self.queue, err)
                messages = []
            if messages:
                delay = MIN_POLLING_INTERVAL
                for message in messages:
                    task = asyncio.create_task(self._process(message))
                    self._tasks.add(task)
                    task.add_done_callback(self._done)
                continue
            self._wake.clear()
            # Randomized exponential backoff, as the host's queue listener does.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay * random.uniform(0.8, 1.0))
            delay = min(delay * 2, ceiling)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("Queue message handling crashed", exc_info=task.exception())

    async def _process(self, raw: RawQueueMessage) -> None:
        if raw.dequeue_count > self.options.max_dequeue_count:
            await self._to_poison(raw)
            return
        stop_renewing = asyncio.Event()
        renewal = asyncio.create_task(self._keep_hidden(raw, stop_renewing))
        succeeded = False
        try:
            try:
                body = decode_message(raw.content, self.options.message_encoding)
                trigger_value = self._trigger_value(raw, body)
            except ValueError as err:
                log.error("Queue '%s' message %s: %s", self.queue, raw.id, err)
            else:
                metadata = queue_binding_data(
                    raw.id,
                    body,
                    raw.dequeue_count,
                    raw.inserted_on,
                    raw.expires_on,
                    raw.next_visible_on,
                    raw.pop_receipt,
                    properties=self._wants_properties,
                )
                result = await self.host.invoker.invoke(self.function, trigger_value, metadata)
                succeeded = result.succeeded
        except asyncio.CancelledError:
            # Shutdown outlived its grace period: hand the message to another host now.
            receipt = await self._stop_renewal(renewal, stop_renewing)
            with contextlib.suppress(Exception):
                release = self.account.set_visibility(self.queue, raw.id, receipt, 0)
                await asyncio.shield(release)
            raise
        receipt = await self._stop_renewal(renewal, stop_renewing)
        if succeeded:
            await self.account.delete(self.queue, raw.id, receipt)
        elif raw.dequeue_count >= self.options.max_dequeue_count:
            await self._to_poison(raw, receipt)
        else:
            await self.account.set_visibility(
                self.queue, raw.id, receipt, int(self.options.visibility_timeout.total_seconds())
            )

    @staticmethod
    async def _stop_renewal(renewal: asyncio.Task[str], stop: asyncio.Event) -> str:
        """Stop renewing and return the latest pop receipt.

        The renewal is asked to stop, not cancelled: a renewal request in flight has already
        changed the message's pop receipt, and only its answer carries the new one.
        """
        stop.set()
        return await asyncio.shield(renewal)

    async def _keep_hidden(self, raw: RawQueueMessage, stop: asyncio.Event) -> str:
        """Renew the message's invisibility while the function runs; return the latest receipt."""
        receipt = raw.pop_receipt
        while True:
            try:
                await asyncio.wait_for(stop.wait(), run_lease_seconds() / 2)
                return receipt
            except TimeoutError:
                pass
            try:
                receipt = await self.account.set_visibility(
                    self.queue, raw.id, receipt, run_lease_seconds()
                )
            except Exception as err:
                log.warning("Renewing message %s on '%s' failed: %s", raw.id, self.queue, err)
                return receipt

    def _trigger_value(self, raw: RawQueueMessage, body: bytes) -> Any:
        annotation = self.function.annotations.get(self.function.trigger.name)
        if annotation is str:
            return body.decode("utf-8")
        if annotation is bytes:
            return body
        return QueueMessage(  # type: ignore[no-untyped-call]
            id=raw.id,
            body=body,
            dequeue_count=raw.dequeue_count,
            expiration_time=raw.expires_on,
            insertion_time=raw.inserted_on,
            time_next_visible=raw.next_visible_on,
            pop_receipt=raw.pop_receipt,
        )

    async def _to_poison(self, raw: RawQueueMessage, receipt: str | None = None) -> None:
        log.warning(
            "Message %s has reached MaxDequeueCount of %d. Moving message to queue '%s'.",
            raw.id,
            self.options.max_dequeue_count,
            self.poison_queue,
        )
        await self.account.send(self.poison_queue, raw.content)
        await self.account.delete(self.queue, raw.id, receipt or raw.pop_receipt)
        self.host.queue_notifier.notify(self.poison_queue)
