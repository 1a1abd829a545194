"""Blob triggers: poll a container, run the function once per new or changed blob version.

As the Functions host's container scan does: every blob whose name matches the trigger's
`path` and whose version (ETag) has no completed receipt fires the function, blobs already
there when a host first starts included. Receipts (`blob_receipts`) make each version run
once across the host processes sharing the storage account, and survive restarts; a failed
run is tried again, up to host.json's `extensions.blobs.poisonBlobThreshold` attempts (5),
and then a message goes to the `webjobs-blobtrigger-poison` queue.

Polling starts at one second while blobs keep coming and backs off to ten seconds when idle
(ORCHESTRATION_BLOB_POLLING_INTERVAL sets the idle interval, in seconds); a blob output of
this process wakes the listeners of its container at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Mapping
from typing import Any

from orchestration.bindings.expressions import BindingExpressionError, BlobPathPattern
from orchestration.bindings.store import BindingStore, BindingTargetError, BlobItem
from orchestration.bindings.store import check_container as _check_container
from orchestration.bindings.values import BindingValueError, blob_parameter, encode_queue_message
from orchestration.host.app_loader import FunctionSpec
from orchestration.host.binding_data import BLOB_NAMES, blob_binding_data
from orchestration.host.bindings import BindingConfigError, HostContext, Listener, TriggerHandler
from orchestration.host.blob_receipts import (
    LEASE_SECONDS,
    POISON_QUEUE,
    BlobReceipts,
    Claim,
    Receipt,
    pending,
    poison_message,
    receipt_path,
)
from orchestration.host.settings import BlobOptions
from orchestration.host.storage import StorageAccount
from orchestration.host.storage_bindings import parameter_annotation

log = logging.getLogger("orchestration.host.blob")

POLLING_SETTING = "ORCHESTRATION_BLOB_POLLING_INTERVAL"
BUSY_INTERVAL = 1.0
IDLE_INTERVAL = 10.0


def polling_intervals(settings: Mapping[str, str]) -> tuple[float, float]:
    """(busy, idle) seconds between scans; the setting gives the idle one (and caps the busy
    one), BindingConfigError when it is no positive number."""
    raw = settings.get(POLLING_SETTING)
    if not raw:
        return BUSY_INTERVAL, IDLE_INTERVAL
    try:
        idle = float(raw)
    except ValueError:
        idle = 0.0
    if not idle > 0:
        raise BindingConfigError(f"{POLLING_SETTING} must be a positive number of seconds")
    return min(BUSY_INTERVAL, idle), idle


def next_interval(current: float, found: bool, busy: float, idle: float) -> float:
    """The pause before the next scan: short while blobs come, doubling up to `idle`."""
    return busy if found else min(max(current, busy) * 2, idle)


class BlobTriggerHandler(TriggerHandler):
    """`blobTrigger`: one polling listener per function, invocations bounded per host by
    extensions.blobs.maxDegreeOfParallelism."""

    def __init__(self) -> None:
        self._slots: dict[int, asyncio.Semaphore] = {}

    @staticmethod
    def pattern(function: FunctionSpec, host: HostContext) -> BlobPathPattern:
        """The trigger's path (settings resolved) as a pattern; BindingConfigError if bad."""
        raw = function.trigger.get("path")
        if not raw:
            raise BindingConfigError(f"blob trigger '{function.trigger.name}' has no path")
        try:
            pattern = BlobPathPattern.parse(host.resolve(str(raw)))
            _check_container(pattern.container)
        except (BindingExpressionError, BindingTargetError) as err:
            raise BindingConfigError(f"blob trigger '{function.trigger.name}': {err}") from err
        return pattern

    def validate(self, function: FunctionSpec, host: HostContext) -> None:
        self.pattern(function, host)
        source = str(function.trigger.get("source") or "LogsAndContainerScan")
        if source.lower() != "logsandcontainerscan":
            raise BindingConfigError(
                f"blob trigger '{function.trigger.name}': source {source!r} needs an Event Grid "
                "subscription, which the local host has none of; use LogsAndContainerScan "
                "(the default)"
            )
        host.connection_string(function.trigger.get("connection"))
        polling_intervals(host.settings)

    def binding_data_names(self, function: FunctionSpec, host: HostContext) -> set[str] | None:
        return set(self.pattern(function, host).parameters) | BLOB_NAMES

    def create_listener(self, function: FunctionSpec, host: HostContext) -> Listener:
        slots = self._slots.get(id(host))
        if slots is None:
            slots = self._slots[id(host)] = asyncio.Semaphore(
                host.host_json.blobs.max_degree_of_parallelism
            )
        connection = host.connection_string(function.trigger.get("connection"))
        try:
            receipts_account = host.storage_for()
        except BindingConfigError:  # no AzureWebJobsStorage: the blobs' own account
            receipts_account = host.storage.get(connection)
        busy, idle = polling_intervals(host.settings)
        return BlobListener(
            function=function,
            pattern=self.pattern(function, host),
            store=host.binding_stores.get(connection),
            receipts=BlobReceipts(receipts_account),
            poison_account=host.storage.get(connection),
            host=host,
            slots=slots,
            intervals=(busy, idle),
        )


class BlobListener:
    """Scans one container for one function and runs each new blob version once."""

    def __init__(
        self,
        function: FunctionSpec,
        pattern: BlobPathPattern,
        store: BindingStore,
        receipts: BlobReceipts,
        poison_account: StorageAccount,
        host: HostContext,
        slots: asyncio.Semaphore,
        intervals: tuple[float, float],
    ) -> None:
        self.function = function
        self.pattern = pattern
        self.store = store
        self.receipts = receipts
        self.poison_account = poison_account
        self.host = host
        self.slots = slots
        self.busy, self.idle = intervals
        self.options: BlobOptions = host.host_json.blobs
        self.annotation = parameter_annotation(function, function.trigger.name)
        self.data_type = function.trigger.get("dataType")
        self._completed: dict[str, str] = {}  # blob name -> ETag done, so scans skip it
        self._running: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    async def start(self) -> None:
        """Start scanning (the first scan runs at once)."""
        self._wake = self.host.blob_notifier.subscribe(self.pattern.container)
        self._poller = asyncio.create_task(self._poll(), name=f"blob-listener:{self.function.name}")

    async def stop(self, grace: float) -> None:
        """Stop scanning; running invocations get `grace` s, then their claims are released."""
        self._stopping = True
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._tasks:
            _, unfinished = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in unfinished:
                task.cancel()
            if unfinished:
                await asyncio.wait(unfinished, timeout=5)

    async def _poll(self) -> None:
        delay = self.busy
        while not self._stopping:
            self._wake.clear()  # before the scan, so a write during it wakes the next one
            try:
                found = await self._scan()
            except Exception as err:
                log.warning(
                    "Blob trigger '%s': scanning container '%s' failed: %s",
                    self.function.name,
                    self.pattern.container,
                    err,
                )
                found = False
            delay = next_interval(delay, found, self.busy, self.idle)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
                delay = self.busy  # woken by a write: scan now and keep scanning soon

    async def _scan(self) -> bool:
        """List the container; start a task per blob version not known to be done."""
        listed: dict[str, BlobItem] = {}
        async for item in self.store.list_blobs(self.pattern.container, self.pattern.prefix):
            if self.pattern.match(item.name) is not None:
                listed[item.name] = item
        self._completed = {n: e for n, e in self._completed.items() if n in listed}
        todo = pending(listed.values(), self._completed, self._running)
        for item in todo:
            key = (item.name, item.etag)
            self._running.add(key)
            task = asyncio.create_task(self._process(item))
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._done, key=key))
        return bool(todo)

    def _done(self, task: asyncio.Task[None], *, key: tuple[str, str]) -> None:
        self._tasks.discard(task)
        self._running.discard(key)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "Blob trigger '%s': handling blob '%s' crashed",
                self.function.name,
                key[0],
                exc_info=task.exception(),
            )

    def _log(self, level: int, event: str, item: BlobItem, message: str, *args: Any) -> None:
        path = f"{self.pattern.container}/{item.name}"
        log.log(
            level,
            "Blob trigger 'Functions.%s' %s (ETag %s): " + message,
            self.function.name,
            path,
            item.etag,
            *args,
            extra={
                "function": self.function.name,
                "blob": path,
                "etag": item.etag,
                "event": event,
            },
        )

    async def _process(self, item: BlobItem) -> None:
        async with self.slots:
            if self._stopping:
                return
            path = receipt_path(
                self.host.host_id,
                self.function.name,
                item.etag,
                self.pattern.container,
                item.name,
            )
            claim = await self.receipts.claim(path)
            if claim is Receipt.COMPLETED:
                self._completed[item.name] = item.etag
                return
            if not isinstance(claim, Claim):
                return
            renewal = asyncio.create_task(self._keep_lease(claim, item))
            try:
                await self._attempt(item, claim)
            except asyncio.CancelledError:
                # Shutdown outlived its grace period: hand the blob to another host now.
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.receipts.release(claim))
                raise
            finally:
                renewal.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewal

    async def _attempt(self, item: BlobItem, claim: Claim) -> None:
        threshold = self.options.poison_blob_threshold
        attempt = claim.attempts + 1
        if claim.attempts >= threshold:  # the last attempt's process died mid-run
            await self._to_poison(item, claim, claim.attempts)
            return
        if not await self.receipts.begin_attempt(claim):
            self._log(logging.WARNING, "lease_lost", item, "lost its receipt lease; skipped")
            return
        content = await self.store.read_blob(self.pattern.container, item.name, item.etag)
        if content is None:  # changed or deleted since listed: the new version fires itself
            self._log(logging.INFO, "superseded", item, "changed or deleted before it ran")
            await self.receipts.complete(claim, attempt, "superseded")
            self._completed[item.name] = item.etag
            return
        self._log(
            logging.INFO, "detected", item, "new blob detected (attempt %d of %d)", attempt,
            threshold,
        )  # fmt: skip
        succeeded = False
        try:
            value = blob_parameter(content, self.annotation, self.data_type)
        except BindingValueError as err:
            self._log(logging.ERROR, "failed", item, "%s", err)
        else:
            data = blob_binding_data(
                self.pattern.match(item.name) or {},
                self.pattern.container,
                item.name,
                content.uri,
                content.properties,
                content.metadata,
            )
            result = await self.host.invoker.invoke(self.function, value, data)
            succeeded = result.succeeded
        if succeeded:
            await self.receipts.complete(claim, attempt, "succeeded")
            self._completed[item.name] = item.etag
        elif attempt >= threshold:
            await self._to_poison(item, claim, attempt)
        else:
            self._log(logging.WARNING, "failed", item, "attempt %d failed; will retry", attempt)
            await self.receipts.release(claim)

    async def _to_poison(self, item: BlobItem, claim: Claim, attempts: int) -> None:
        self._log(
            logging.WARNING, "poisoned", item,
            "failed %d times (poisonBlobThreshold); sending a message to queue '%s'",
            attempts, POISON_QUEUE,
        )  # fmt: skip
        message = poison_message(self.function.name, self.pattern.container, item.name, item.etag)
        encoding = self.host.host_json.queues.message_encoding
        await self.poison_account.send(POISON_QUEUE, encode_queue_message(message, encoding))
        self.host.queue_notifier.notify(POISON_QUEUE)
        await self.receipts.complete(claim, attempts, "poisoned")
        self._completed[item.name] = item.etag

    async def _keep_lease(self, claim: Claim, item: BlobItem) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            try:
                kept = await self.receipts.renew(claim)
            except Exception as err:
                kept = False
                log.debug("renewing receipt %s failed: %s", claim.path, err)
            if not kept:
                self._log(
                    logging.WARNING, "lease_lost", item,
                    "lost its receipt lease while running; another host may run it too",
                )  # fmt: skip
                return
