"""The task hub: an orchestration engine's state on Azure Tables, Queues and Blobs.

Layout (hub `H`):
- table `HInstances`, one partition per instance: the `state` row (status, input, output,
  custom status, the execution's generation and step count; its ETag is the commit point),
  and one history row per committed step (`h{generation}-{step}-{part}`).
- queue `h-control`: events for instances (activity results, timers, external events,
  lifecycle operations), each message carrying its event; `h-workitems`: activities to run;
  `h-starts`: start requests from any producer.
- table `HTimers`: timers too far away for a delayed queue message, moved to the control
  queue by the timer sweeper as they come within reach.
- blob container `h-payloads`: events and messages too large for a row or a message.

A step commits its history rows and the new state row in one entity group transaction,
conditional on the state row's ETag (rule 1). Messages a step implies are derived from its
scheduling events and sent after the commit; if a worker dies before sending them, the
redelivered trigger message (or the repair sweep) makes the next worker re-send every message
of the instance's open work, which receivers accept idempotently (rule 2).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from orchestration.azure import (
    BatchError,
    BlobService,
    Conflict,
    Entity,
    PreconditionFailed,
    QueueMessage,
    QueueService,
    ResourceNotFound,
    SentMessage,
    StorageAccount,
    TableOperation,
    TableService,
)
from orchestration.azure.memory import MemoryAccount, memory_services
from orchestration.core.history import (
    ExecutionStarted,
    HistoryEvent,
    ParentInstance,
)
from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.storage import codec
from orchestration.storage.faults import FaultInjector
from orchestration.storage.links import InstanceLinks, load_hub_secret
from orchestration.storage.messages import (
    MAX_RAW_MESSAGE_CHARS,
    ActivityBatch,
    ActivityMessage,
    ControlMessage,
    EngineMessage,
    MalformedMessageError,
    encode,
    parse,
    raw_json,
)
from orchestration.storage.names import (
    HubNames,
    odata_string,
    to_key,
    validate_instance_id,
)
from orchestration.storage.payloads import PayloadStore, is_reference, reference_in
from orchestration.storage.state import (
    STATE_ROW,
    state_from_row,
    state_row,
    utc,
)
from orchestration.storage.state import (
    InstanceState as InstanceState,  # re-exported: it is the hub's record
)

MAX_BATCH = 100
SECRET_TTL = 300.0  # seconds a process trusts its copy of the hub's secret
# A transaction carries at most 4 MiB; history beyond this many characters (UTF-8 may double
# them) moves to a blob, leaving the state row and a small pointer row in the transaction.
MAX_TRANSACTION_HISTORY_CHARS = 1_500_000
MAX_QUEUE_DELAY = timedelta(days=6, hours=23)
INLINE_STEP_CHARS = 16_000  # a first step up to this size stays in the state row
# Queue sends in flight at once, per process: below the account's 100 connections, so that
# a wide fan-out neither starves commits nor times out requests queued for a connection
# (20,000 sends at once gave 7,310 OutcomeUnknown: the wait counted in their timeout).
SEND_CONCURRENCY = 64


class ConcurrencyError(Exception):
    """Another worker committed this instance first (the state row's ETag changed)."""


class InstanceExistsError(Exception):
    """An instance with this id exists and has not finished."""


class TaskHub:
    """Storage primitives of one task hub. Safe to share between coroutines of one loop."""

    def __init__(
        self,
        account: StorageAccount | MemoryAccount,
        hub_name: str,
        *,
        faults: FaultInjector | None = None,
        payload_threshold: int = 16_000,
        services: tuple[TableService, QueueService, BlobService] | None = None,
    ) -> None:
        """`services`: the storage to use instead of the account's (the in-memory twin)."""
        self.account = account
        self.names = HubNames(hub_name)
        if services is None:
            assert isinstance(account, StorageAccount)
            services = TableService(account), QueueService(account), BlobService(account)
        self.tables, self.queues, self.blobs = services
        self.payloads = PayloadStore(self.blobs, self.names.payload_container, payload_threshold)
        self.faults = faults or FaultInjector()
        self._created = False
        self._secret: tuple[float, bytes] | None = None
        self._send_slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    @classmethod
    def in_memory(cls, hub_name: str = "MemoryHub", **kwargs: Any) -> TaskHub:
        """A task hub on the in-memory twin of the storage services (fast tests of the
        engine's logic; never a stand-in for Azurite where storage itself is tested)."""
        return cls(MemoryAccount(), hub_name, services=memory_services(), **kwargs)

    @classmethod
    def from_connection_string(
        cls, connection_string: str, hub_name: str, **kwargs: Any
    ) -> TaskHub:
        return cls(StorageAccount.from_connection_string(connection_string), hub_name, **kwargs)

    async def close(self) -> None:
        await self.account.close()

    async def create_if_not_exists(self) -> None:
        """Create the hub's tables, queues and container (idempotent, once per process)."""
        if self._created:
            return
        names = self.names
        await asyncio.gather(
            self.tables.create_table(names.instances_table),
            self.tables.create_table(names.timers_table),
            self.queues.create_queue(names.control_queue),
            self.queues.create_queue(names.work_item_queue),
            self.queues.create_queue(names.starts_queue),
            self.payloads.create(),
        )
        self._created = True

    async def secret(self) -> bytes:
        """The hub's signing secret (`storage.links`), read again after SECRET_TTL so that
        deleting its blob revokes links and dashboard sessions in every process."""
        now = time.monotonic()
        if self._secret is None or now - self._secret[0] > SECRET_TTL:
            secret = await load_hub_secret(self.blobs, self.names.payload_container)
            self._secret = (now, secret)
        return self._secret[1]

    async def instance_links(self) -> InstanceLinks:
        """The hub's instance links."""
        return InstanceLinks(await self.secret())

    # -- instance state -----------------------------------------------------------------
    async def _state(self, row: Entity) -> InstanceState:
        """A state row as an InstanceState (a failure moved to a blob is fetched back)."""
        failure = row.get("Failure")
        if failure and failure.startswith('{"$blob"'):
            row["Failure"] = await self.resolve(failure)
        return self._state_from_row(row)

    def _state_from_row(self, row: Entity) -> InstanceState:
        return state_from_row(row)

    async def _state_to_row(self, state: InstanceState) -> dict[str, Any]:
        return await state_row(state, self.payloads)

    async def resolve(self, text: str | None) -> str | None:
        """A stored payload as the user sees it (blob references fetched)."""
        reference = reference_in(text)
        if reference is None:
            return text
        return await self.payloads.fetch(reference)

    async def mark_repair(self, state: InstanceState, next_repair_at: datetime) -> bool:
        """Record a repair on a quiet instance, if nobody wrote it meanwhile."""
        row = {
            "PartitionKey": to_key(state.instance_id),
            "RowKey": STATE_ROW,
            "Repairs": state.repairs + 1,
            "NextRepairAt": next_repair_at,
        }
        try:
            await self.tables.update(
                self.names.instances_table, row, etag=state.etag or "*", mode="merge"
            )
        except PreconditionFailed:
            return False
        return True

    async def read_state(self, instance_id: str) -> InstanceState | None:
        row = await self.tables.get_entity(
            self.names.instances_table, to_key(instance_id), STATE_ROW
        )
        return await self._state(row) if row is not None else None

    async def _partition_rows(
        self, instance_id: str, prefix: str | None = None, *, keys_only: bool = False
    ) -> list[Entity]:
        """Rows of an instance's partition, optionally only those whose RowKey has `prefix`."""
        clause = f"PartitionKey eq {odata_string(to_key(instance_id))}"
        if prefix is not None:
            clause += (
                f" and RowKey ge {odata_string(prefix)} and RowKey lt {odata_string(prefix + '~')}"
            )
        select = ["PartitionKey", "RowKey"] if keys_only else None
        return [
            row
            async for row in self.tables.query(
                self.names.instances_table, filter=clause, select=select
            )
        ]

    async def load(self, instance_id: str) -> tuple[InstanceState | None, list[HistoryEvent]]:
        """The state row and the current execution's history, in one partition query."""
        rows = await self._partition_rows(instance_id)
        state_row = next((row for row in rows if row["RowKey"] == STATE_ROW), None)
        if state_row is None:
            return None, []
        state = await self._state(state_row)
        prefix = codec.generation_prefix(state.generation)
        history_rows = [row for row in rows if row["RowKey"].startswith(prefix)]
        return state, await self._history(state, history_rows)

    async def read_history(self, state: InstanceState) -> list[HistoryEvent]:
        prefix = codec.generation_prefix(state.generation)
        rows = await self._partition_rows(state.instance_id, prefix)
        return await self._history(state, rows)

    async def _history(self, state: InstanceState, rows: list[Entity]) -> list[HistoryEvent]:
        events = (
            await codec.decode_step(state.first_step, self.payloads) if state.first_step else []
        )
        return events + await codec.decode_rows(rows, self.payloads)

    async def create_instance(
        self,
        name: str,
        instance_id: str,
        input_text: str | None,
        *,
        now: datetime,
        version: str | None = None,
        parent: ParentInstance | None = None,
        execution_id: str,
        message_id: str | None = None,
        overwrite_finished: bool = True,
        trace: str | None = None,
    ) -> InstanceState:
        """Write a Pending instance and send its ExecutionStarted (idempotent per message id).

        An existing instance is replaced only when it has finished (and `overwrite_finished`);
        otherwise InstanceExistsError. A start whose `message_id` the instance already holds
        (a redelivered start) returns the instance as it is.
        """
        state = await self.new_instance(
            name,
            instance_id,
            input_text,
            now=now,
            version=version,
            parent=parent,
            execution_id=execution_id,
            message_id=message_id,
            overwrite_finished=overwrite_finished,
            trace=trace,
        )
        if state.execution_id != execution_id:  # a redelivered start: send it on
            await self._send_start(state, message_id)
            return state
        try:
            state.etag = await self._write_state_row(state, state.etag)
        except (Conflict, PreconditionFailed) as error:
            # The same start may have won the race (a repair re-sending it while the first
            # send was in flight): that is this start, done.
            current = await self.read_state(instance_id) if message_id is not None else None
            if current is not None and message_id in current.applied_ids:
                if current.status is OrchestrationRuntimeStatus.Pending:
                    await self._send_start(current, message_id)
                return current
            raise InstanceExistsError(
                f"An instance with id {instance_id!r} was created concurrently."
            ) from error
        await self._send_start(state, message_id)
        return state

    async def new_instance(
        self,
        name: str,
        instance_id: str,
        input_text: str | None,
        *,
        now: datetime,
        execution_id: str,
        version: str | None = None,
        parent: ParentInstance | None = None,
        message_id: str | None = None,
        overwrite_finished: bool = True,
        exists: bool | None = None,
        trace: str | None = None,
    ) -> InstanceState:
        """The Pending state of an instance about to be created, not yet written.

        Its ETag is that of the finished instance it replaces (None: the id is free), so the
        write that creates it fails if someone else got there first. Raises
        InstanceExistsError if an unfinished instance holds the id; returns the existing
        instance as it is if it holds `message_id` (a redelivered start). `exists=False`
        skips the read (a freshly generated id).
        """
        validate_instance_id(instance_id)
        await self.create_if_not_exists()
        existing = None if exists is False else await self.read_state(instance_id)
        if existing is not None:
            if message_id is not None and message_id in existing.applied_ids:
                return existing
            if not (overwrite_finished and existing.status.is_terminal):
                raise InstanceExistsError(
                    f"An instance with id {instance_id!r} already exists "
                    f"(status {existing.status.value})."
                )
        return InstanceState(
            instance_id=instance_id,
            name=name,
            status=OrchestrationRuntimeStatus.Pending,
            created_at=now,
            updated_at=now,
            input=input_text,
            execution_id=execution_id,
            generation=(existing.generation + 1) if existing else 0,
            version=version,
            parent=parent,
            applied_ids=[message_id] if message_id else [],
            trace=trace,
            etag=existing.etag if existing else None,
        )

    async def resend_start(self, state: InstanceState) -> None:
        """Send a Pending instance's ExecutionStarted again (its first send may be lost)."""
        await self._send_start(state, None)

    def start_message(self, state: InstanceState, message_id: str | None = None) -> ControlMessage:
        """The control message that starts a Pending instance."""
        started = ExecutionStarted(
            -1,
            state.created_at,
            name=state.name,
            instance_id=state.instance_id,
            input=state.input,
            version=state.version,
            parent=state.parent,
            execution_id=state.execution_id,
        )
        if message_id is None:
            return ControlMessage(state.instance_id, started, state.execution_id)
        return ControlMessage(state.instance_id, started, state.execution_id, message_id)

    async def _send_start(self, state: InstanceState, message_id: str | None) -> None:
        await self.send_control(self.start_message(state, message_id))

    async def commit(
        self,
        before: InstanceState,
        after: InstanceState,
        events: Sequence[HistoryEvent],
        *,
        next_generation_events: Sequence[HistoryEvent] = (),
    ) -> InstanceState:
        """Append a step's history and write the new state, atomically, if nobody else did.

        `after.steps` must be `before.steps + 1`. With `next_generation_events` (continue as
        new), `after` describes the new execution, whose first step they are.
        """
        text = await self._encode(before.instance_id, events) if events else None
        if next_generation_events:
            after = replace(after, first_step=None)  # a new execution: its history in rows
        elif before.steps == 0 and text is not None and len(text) <= INLINE_STEP_CHARS:
            return await self._commit_first_step(before, replace(after, first_step=text))
        operations: list[TableOperation] = []
        if text is not None:
            operations += self._history_rows(
                before.instance_id, before.generation, before.steps, text
            )
        if next_generation_events:
            next_text = await self._encode(before.instance_id, next_generation_events)
            operations += self._history_rows(before.instance_id, after.generation, 0, next_text)
        state_row = await self._state_to_row(after)
        if before.etag is None:
            operations.append(TableOperation.insert(state_row))
        else:
            operations.append(TableOperation.update(state_row, etag=before.etag, mode="replace"))
        history_chars = sum(
            len(str(value)) for op in operations[:-1] for value in op.entity.values()
        )
        if len(operations) > MAX_BATCH or history_chars > MAX_TRANSACTION_HISTORY_CHARS:
            operations = await self._move_history_to_blob(before, after, operations)
        etags = await self.submit_commit(operations)
        return replace(after, etag=etags[-1])

    async def submit_commit(
        self, operations: list[TableOperation], *, lost_races: tuple[int, ...] = (409, 412)
    ) -> list[str | None]:
        """Submit a commit's transaction (between its fault points); the new ETags. A batch
        refused with a `lost_races` status (someone else wrote first) is a ConcurrencyError."""
        await self.faults.check("commit.before")
        try:
            etags = await self.tables.submit_transaction(self.names.instances_table, operations)
        except BatchError as error:
            if error.status in lost_races:
                raise ConcurrencyError(str(error)) from error
            raise
        except (PreconditionFailed, Conflict) as error:
            raise ConcurrencyError(str(error)) from error
        await self.faults.check("commit.after")
        return etags

    async def _commit_first_step(
        self, before: InstanceState, after: InstanceState
    ) -> InstanceState:
        """Commit a small first step held in the state row: one entity write, no batch."""
        await self.faults.check("commit.before")
        try:
            etag = await self._write_state_row(after, before.etag)
        except (PreconditionFailed, Conflict) as error:
            raise ConcurrencyError(str(error)) from error
        await self.faults.check("commit.after")
        committed = replace(after, etag=etag)
        return committed

    async def _write_state_row(self, state: InstanceState, etag: str | None) -> str:
        """Insert the state row (`etag` None: the id is free) or replace the one with that
        ETag; the new ETag. Raises Conflict or PreconditionFailed if someone got there first."""
        row = await self._state_to_row(state)
        if etag is None:
            return await self.tables.insert(self.names.instances_table, row)
        return await self.tables.update(self.names.instances_table, row, etag=etag, mode="replace")

    async def _encode(self, instance_id: str, events: Sequence[HistoryEvent]) -> str:
        return await codec.encode_events(events, self.payloads, instance_id)

    @staticmethod
    def _history_rows(
        instance_id: str, generation: int, step: int, text: str
    ) -> list[TableOperation]:
        """The upserts that store one step's events, encoded as `text` (one row per part)."""
        key = to_key(instance_id)
        return [
            TableOperation.upsert(
                {
                    "PartitionKey": key,
                    "RowKey": codec.history_row_key(generation, step, part),
                    **props,
                },
                "replace",
            )
            for part, props in enumerate(codec.split_text(text))
        ]

    async def _move_history_to_blob(
        self, before: InstanceState, after: InstanceState, operations: list[TableOperation]
    ) -> list[TableOperation]:
        """A step too large for one transaction keeps one row per step pointing at a blob."""
        *history, state = operations
        by_step: dict[str, list[dict[str, Any]]] = {}
        for op in history:
            step_key = str(op.entity["RowKey"]).rsplit("-", 1)[0]
            by_step.setdefault(step_key, []).append(dict(op.entity))
        result: list[TableOperation] = []
        for step_key, rows in by_step.items():
            text = "".join(codec.join_text(row) for row in rows)
            reference = await self.payloads.store(codec.blob_prefix(before.instance_id), text)
            props = codec.split_text(json.dumps([{"$chunk": reference}]))[0]
            result.append(
                TableOperation.upsert(
                    {"PartitionKey": rows[0]["PartitionKey"], "RowKey": f"{step_key}-000", **props}
                )
            )
        return [*result, state]

    async def rewrite_history(
        self, before: InstanceState, after: InstanceState, events: Sequence[HistoryEvent]
    ) -> InstanceState:
        """Replace the current execution's history and the state row, atomically (rewind).

        The history becomes one step row; `after.steps` is set to 1 accordingly.
        """
        key = to_key(before.instance_id)
        prefix = codec.generation_prefix(before.generation)
        old_rows = await self._partition_rows(before.instance_id, prefix, keys_only=True)
        text = await self._encode(before.instance_id, events)
        operations = self._history_rows(before.instance_id, before.generation, 0, text)
        new_keys = {op.entity["RowKey"] for op in operations}
        operations += [
            TableOperation.delete(key, row["RowKey"])
            for row in old_rows
            if row["RowKey"] not in new_keys
        ]
        after = replace(after, steps=1, first_step=None)
        state_row = await self._state_to_row(after)
        operations.append(TableOperation.update(state_row, etag=before.etag or "*", mode="replace"))
        if len(operations) > MAX_BATCH:
            raise ValueError(
                f"history of {before.instance_id!r} spans too many rows to rewrite at once"
            )
        try:
            etags = await self.tables.submit_transaction(self.names.instances_table, operations)
        except (BatchError, PreconditionFailed, Conflict) as error:
            raise ConcurrencyError(str(error)) from error
        return replace(after, etag=etags[-1])

    async def delete_generation(self, instance_id: str, generation: int) -> None:
        """Remove the history rows of a finished execution (after continue-as-new)."""
        prefix = codec.generation_prefix(generation)
        await self._delete_rows(
            instance_id, await self._partition_rows(instance_id, prefix, keys_only=True)
        )

    async def _delete_rows(self, instance_id: str, rows: Sequence[Entity]) -> None:
        key = to_key(instance_id)
        for start in range(0, len(rows), MAX_BATCH):
            chunk = rows[start : start + MAX_BATCH]
            await self.tables.submit_transaction(
                self.names.instances_table,
                [TableOperation.delete(key, row["RowKey"]) for row in chunk],
            )

    async def purge(self, instance_id: str) -> bool:
        """Delete an instance's state, history and payload blobs. False if it did not exist."""
        rows = await self._partition_rows(instance_id, keys_only=True)
        await self._delete_rows(instance_id, rows)
        await self.payloads.delete_prefix(codec.blob_prefix(instance_id))
        return bool(rows)

    async def query_states(
        self, filter: str | None = None, top: int | None = None, continuation: Any = None
    ) -> tuple[list[InstanceState], Any]:
        """One page of instance states; `filter` must be built from validated values."""
        clause = f"RowKey eq {odata_string(STATE_ROW)}"
        if filter:
            clause = f"{clause} and ({filter})"
        rows, token = await self.tables.query_page(
            self.names.instances_table, filter=clause, top=top, continuation=continuation
        )
        return [await self._state(row) for row in rows], token

    async def iterate_states(self, filter: str | None = None) -> AsyncIterator[InstanceState]:
        clause = f"RowKey eq {odata_string(STATE_ROW)}"
        if filter:
            clause = f"{clause} and ({filter})"
        async for row in self.tables.query(self.names.instances_table, filter=clause):
            yield await self._state(row)

    # -- messages -----------------------------------------------------------------------
    @property
    def engine_queues(self) -> tuple[str, str, str]:
        names = self.names
        return names.control_queue, names.work_item_queue, names.starts_queue

    async def queue_depths(self) -> dict[str, int | None]:
        """Approximate messages in each engine queue and its poison queue (None: absent)."""
        depths: dict[str, int | None] = {}
        for queue in [*self.engine_queues, *(f"{q}-poison" for q in self.engine_queues)]:
            try:
                depths[queue] = await self.queues.approximate_count(queue)
            except ResourceNotFound:
                depths[queue] = None
        return depths

    async def poison_depths(self) -> dict[str, int]:
        """Approximate messages on each engine queue's poison queue (0 where it is absent)."""
        depths = await self.queue_depths()
        return {queue: depths.get(f"{queue}-poison") or 0 for queue in self.engine_queues}

    async def poison(self, queue: str, body: bytes, reason: str) -> None:
        """Put a message that cannot be processed on `queue`'s poison queue, with why."""
        poison = f"{queue}-poison"
        await self.queues.create_queue(poison)
        envelope = {"reason": reason, "body": body.decode("utf-8", errors="replace")}
        await self.queues.send(poison, json.dumps(envelope))

    async def receive(self, queue: str, count: int, visibility_timeout: int) -> list[QueueMessage]:
        """Up to `count` messages of one of the hub's queues, hidden for the timeout."""
        return await self.queues.receive(queue, count, visibility_timeout=visibility_timeout)

    async def delete_message(self, queue: str, message: QueueMessage) -> None:
        """Delete a received message (its effect is committed)."""
        await self.queues.delete(queue, message.id, message.pop_receipt)

    async def _queue_text(self, instance_id: str, body: dict[str, Any]) -> str:
        text = json.dumps(body, separators=(",", ":"))
        if len(text) > MAX_RAW_MESSAGE_CHARS:
            reference = await self.payloads.store(codec.blob_prefix(instance_id), text)
            body = {**reference}
        return encode(body)

    def _sending(self) -> asyncio.Semaphore:
        """The process's send slots (a semaphore belongs to one event loop)."""
        loop = asyncio.get_running_loop()
        if self._send_slots is None or self._send_slots[0] is not loop:
            self._send_slots = (loop, asyncio.Semaphore(SEND_CONCURRENCY))
        return self._send_slots[1]

    async def send_control(
        self, message: ControlMessage, delay: timedelta | None = None
    ) -> SentMessage:
        seconds = 0
        if delay is not None and delay > timedelta(0):
            seconds = int(min(delay, MAX_QUEUE_DELAY).total_seconds() + 0.999)
        async with self._sending():
            text = await self._queue_text(message.instance_id, message.to_json())
            await self.faults.check("send.control")
            return await self.queues.send(
                self.names.control_queue, text, visibility_timeout=seconds
            )

    async def send_activity(self, message: ActivityMessage | ActivityBatch) -> None:
        async with self._sending():
            text = await self._queue_text(message.instance_id, message.to_json())
            await self.faults.check("send.activity")
            await self.queues.send(self.names.work_item_queue, text)

    async def decode_message(self, text: str | bytes) -> EngineMessage:
        """An engine message from queue text; MalformedMessageError when it is not ours."""
        data = raw_json(text)
        if is_reference(data):
            data = raw_json(await self.payloads.fetch(data))
        return parse(data)

    # -- timers too far for a delayed message ---------------------------------------------
    async def store_far_timer(self, message: ControlMessage, fire_at: datetime) -> None:
        """Keep a timer in the timers table until the sweeper can queue it (idempotent)."""
        event = message.event
        timer_id = getattr(event, "timer_id", 0)
        row = {
            "PartitionKey": fire_at.strftime("%Y%m%d"),
            "RowKey": f"{fire_at.isoformat()}|{to_key(message.instance_id)}|"
            f"{message.execution_id}|{timer_id}",
            "FireAt": fire_at,
            "Message": json.dumps(message.to_json(), separators=(",", ":")),
        }
        await self.tables.upsert(self.names.timers_table, row, mode="replace")

    async def due_far_timers(self, horizon: datetime) -> list[tuple[Entity, ControlMessage]]:
        """Stored timers firing before `horizon`."""
        clause = f"PartitionKey le {odata_string(horizon.strftime('%Y%m%d'))}"
        due: list[tuple[Entity, ControlMessage]] = []
        async for row in self.tables.query(self.names.timers_table, filter=clause):
            if utc(row["FireAt"]) > horizon:
                continue
            try:
                message = parse(json.loads(row["Message"]))
            except (MalformedMessageError, ValueError):
                continue
            if isinstance(message, ControlMessage):
                due.append((row, message))
        return due

    async def delete_far_timer(self, row: Entity) -> None:
        await self.tables.delete(
            self.names.timers_table, row["PartitionKey"], row["RowKey"], etag="*"
        )
