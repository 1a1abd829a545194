"""An entity's rows in the task hub: its state row, and one row per recent batch.

The state row is an instance's (status, times; its `input` holds the entity's snapshot, a
blob past the payload threshold). A batch's commit writes, in the same table transaction,
a row of what the batch applied (the ids of its requests, hashed) and what it sent: a request
that may be a copy (seen before on the queue, or sent again by a repair) is looked up there,
and a copy of one that ran gets the batch's messages sent again instead of running twice.
Rows older than the dedupe window are deleted by later commits.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestration.azure import (
    BatchError,
    Entity,
    StorageError,
    TableOperation,
)
from orchestration.core.entities import EntityMessage, EntitySnapshot, entity_id_of
from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.storage import codec
from orchestration.storage.hub import ConcurrencyError, TaskHub
from orchestration.storage.names import odata_string, to_key
from orchestration.storage.payloads import reference_in
from orchestration.storage.state import InstanceState

APPLIED_PREFIX = "applied-"
# OData clauses over state rows: the entities' (their names start with '@'), and the rest.
ENTITY_NAMES = "Name ge '@' and Name lt 'A'"
NOT_ENTITY_NAMES = "(Name lt '@' or Name ge 'A')"
# Past this, a batch row's messages go to a blob (a table property holds 32k characters).
_INLINE_MESSAGES_CHARS = 30_000


def request_key(request_id: str) -> str:
    """A short, fixed-size key of a request id (what a batch row keeps)."""
    digest = hashlib.sha256(request_id.encode("utf-8")).digest()[:9]
    return base64.urlsafe_b64encode(digest).decode("ascii")


def applied_row_key(at: datetime, batch: int) -> str:
    millis = int(at.timestamp() * 1000)
    return f"{APPLIED_PREFIX}{millis:014d}-{batch:010d}"


@dataclass(frozen=True, slots=True)
class AppliedBatch:
    """What one committed batch applied and sent."""

    row_key: str
    request_keys: frozenset[str]
    messages: tuple[EntityMessage, ...]


class EntityStore:
    """Reads and commits entities in a task hub's instances table."""

    def __init__(self, hub: TaskHub) -> None:
        self.hub = hub

    async def commit(
        self,
        before: InstanceState,
        after: InstanceState,
        batch: AppliedBatch,
        forget: Sequence[tuple[str, str | None]] = (),
    ) -> InstanceState:
        """Write the entity's new state row and the batch's row in one transaction, if
        nobody else wrote the entity since `before`; drop the rows `forget` names.

        The committed state's `input` is the snapshot as stored (a blob reference past the
        payload threshold); the blob of the snapshot it replaces is deleted (each batch
        would otherwise leave one behind)."""
        hub = self.hub
        key = to_key(before.instance_id)
        messages = json.dumps([m.to_dict() for m in batch.messages], separators=(",", ":"))
        row: dict[str, Any] = {
            "PartitionKey": key,
            "RowKey": batch.row_key,
            "Requests": ",".join(sorted(batch.request_keys)),
        }
        if len(messages) > _INLINE_MESSAGES_CHARS:
            prefix = codec.blob_prefix(before.instance_id)
            row["MessagesBlob"] = json.dumps(await hub.payloads.store(prefix, messages))
        else:
            row["Messages"] = messages
        state_row = await hub._state_to_row(after)
        operations = [TableOperation.upsert(row, "replace")]
        forget = forget[:90]
        operations += [TableOperation.delete(key, old) for old, _ in forget]
        if before.etag is None:
            operations.append(TableOperation.insert(state_row))
        else:
            operations.append(TableOperation.update(state_row, etag=before.etag, mode="replace"))
        stored = state_row.get("Input")  # the snapshot as stored: its text, or a reference
        try:
            # 404: a batch row to forget that another writer deleted first.
            etags = await hub.submit_commit(operations, lost_races=(404, 409, 412))
        except (ConcurrencyError, BatchError):
            await self._drop_blob(stored)  # this commit's snapshot blob, never referenced
            raise
        if before.input != stored:
            await self._drop_blob(before.input)  # the snapshot this commit replaced
        for _, blob in forget:
            await self._drop_blob(blob)
        return replace(after, input=stored, etag=etags[-1])

    async def _drop_blob(self, stored: str | None) -> None:
        """Delete the blob a stored value refers to (best effort: a purge removes what is
        left)."""
        reference = reference_in(stored)
        if reference is not None:
            with contextlib.suppress(StorageError):
                await self.hub.payloads.delete(reference)

    async def snapshot_of(self, state: InstanceState) -> EntitySnapshot:
        """The entity snapshot a state row holds (fetched from its blob when it is one)."""
        return EntitySnapshot.from_json(await self.hub.resolve(state.input))

    async def batches(self, instance_id: str) -> list[Entity]:
        return await self.hub._partition_rows(instance_id, APPLIED_PREFIX)

    async def applied(self, instance_id: str) -> list[AppliedBatch]:
        """The entity's recent batches (what a possible copy is looked up in)."""
        found: list[AppliedBatch] = []
        for row in await self.batches(instance_id):
            text = row.get("Messages")
            if text is None and row.get("MessagesBlob"):
                text = await self.hub.payloads.fetch(json.loads(row["MessagesBlob"]))
            messages = tuple(EntityMessage.from_dict(m) for m in json.loads(text or "[]"))
            keys = frozenset(k for k in str(row.get("Requests") or "").split(",") if k)
            found.append(AppliedBatch(row["RowKey"], keys, messages))
        return found

    async def expired(
        self, instance_id: str, now: datetime, window: timedelta
    ) -> list[tuple[str, str | None]]:
        """Batches older than `window` (to drop with a later commit): row key, and the
        reference of the blob holding its messages, if any."""
        cutoff = applied_row_key(now - window, 0)
        return [
            (row["RowKey"], row.get("MessagesBlob"))
            for row in await self.batches(instance_id)
            if row["RowKey"] < cutoff
        ]

    async def list_states(
        self, name: str | None = None, top: int | None = None, continuation: Any = None
    ) -> tuple[list[InstanceState], Any]:
        """One page of entities' state rows (of one entity name, or all)."""
        clause = f"Name eq {odata_string(row_name(name))}" if name is not None else ENTITY_NAMES
        return await self.hub.query_states(clause, top=top, continuation=continuation)


def batch_of(
    row_key: str, request_ids: Iterable[str], messages: Sequence[EntityMessage]
) -> AppliedBatch:
    return AppliedBatch(row_key, frozenset(request_key(i) for i in request_ids), tuple(messages))


def row_name(entity_name: str) -> str:
    """The `Name` of an entity's state row: `@` and its name in lower case (orchestrator
    names start with a letter or `_`, so entities sort apart: ENTITY_NAMES)."""
    return f"@{entity_name.lower()}"


def new_entity_state(instance_id: str, now: datetime) -> InstanceState:
    """The state row of an entity that has none yet (its first batch's commit inserts it)."""
    return InstanceState(
        instance_id=instance_id,
        name=row_name(entity_id_of(instance_id).name),
        status=OrchestrationRuntimeStatus.Running,
        created_at=now.astimezone(UTC),
        updated_at=now.astimezone(UTC),
        execution_id="entity",
    )
