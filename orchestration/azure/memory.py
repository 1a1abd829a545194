"""An in-memory twin of the storage services, for fast tests of the engine's logic.

`memory_services()` gives table, queue and blob services that keep everything in this
process, with the semantics the engine relies on: ETags that change on every write (412 on
a stale one, 409 on an insert of an existing key), atomic one-partition transactions (all
or nothing, `BatchError` naming the failing operation), OData filters with `eq ne lt le gt
ge and or not`, queue visibility timeouts with dequeue counts and pop receipts, and blobs
that refuse to be overwritten when asked. A `TaskHub` built on them runs unchanged
(`TaskHub.in_memory`). It never replaces Azurite in a test that claims to test storage.
"""

from __future__ import annotations

import builtins
import copy
import itertools
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestration.azure.blobs import BlobInfo, BlobService
from orchestration.azure.errors import (
    BatchError,
    Conflict,
    PreconditionFailed,
    ResourceNotFound,
    StorageError,
)
from orchestration.azure.queues import MAX_MESSAGE_BYTES, QueueMessage, QueueService, SentMessage
from orchestration.azure.tables import MAX_BATCH, Continuation, Entity, Mode, TableOperation
from orchestration.azure.tables import TableService as _TableService

_etags = itertools.count(1)


def _etag() -> str:
    return f'W/"mem-{next(_etags)}"'


def _now() -> datetime:
    return datetime.now(UTC)


# -- OData filters -----------------------------------------------------------------------
_TOKEN = re.compile(
    r"\s*(?:(?P<open>\()|(?P<close>\))|(?P<string>'(?:[^']|'')*')"
    r"|(?P<datetime>datetime'[^']*')|(?P<number>-?\d+(?:\.\d+)?L?)|(?P<word>[A-Za-z_][\w]*))"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}
Predicate = Callable[[Mapping[str, Any]], bool]


def _tokens(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise StorageError(400, "InvalidInput", f"cannot parse filter at {text[position:]!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


def _literal(kind: str, text: str) -> Any:
    if kind == "string":
        return text[1:-1].replace("''", "'")
    if kind == "datetime":
        value = datetime.fromisoformat(text[len("datetime'") : -1].replace("Z", "+00:00"))
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if kind == "number":
        return float(text) if "." in text else int(text.rstrip("L"))
    if text in ("true", "false"):
        return text == "true"
    raise StorageError(400, "InvalidInput", f"not a literal: {text!r}")


def compile_filter(text: str) -> Predicate:
    """A predicate for an OData `$filter` (the subset the engine writes). A comparison with
    a property the entity lacks is false, as in the service."""
    tokens = _tokens(text)
    position = 0

    def peek() -> tuple[str, str] | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal position
        if position >= len(tokens):
            raise StorageError(400, "InvalidInput", f"filter ends too soon: {text!r}")
        position += 1
        return tokens[position - 1]

    def expression() -> Predicate:
        left = conjunction()
        while (token := peek()) is not None and token == ("word", "or"):
            take()
            right = conjunction()
            left = (lambda a, b: lambda e: a(e) or b(e))(left, right)
        return left

    def conjunction() -> Predicate:
        left = unary()
        while (token := peek()) is not None and token == ("word", "and"):
            take()
            right = unary()
            left = (lambda a, b: lambda e: a(e) and b(e))(left, right)
        return left

    def unary() -> Predicate:
        token = peek()
        if token == ("word", "not"):
            take()
            inner = unary()
            return lambda e: not inner(e)
        if token is not None and token[0] == "open":
            take()
            inner = expression()
            if take()[0] != "close":
                raise StorageError(400, "InvalidInput", f"unbalanced parentheses: {text!r}")
            return inner
        return comparison()

    def comparison() -> Predicate:
        kind, name = take()
        if kind != "word":
            raise StorageError(400, "InvalidInput", f"expected a property: {text!r}")
        _, operator = take()
        compare = _COMPARE.get(operator)
        if compare is None:
            raise StorageError(400, "InvalidInput", f"unknown operator {operator!r}")
        value = _literal(*take())

        def holds(entity: Mapping[str, Any]) -> bool:
            if name not in entity or entity[name] is None:
                return False
            try:
                return compare(entity[name], value)
            except TypeError:
                return False

        return holds

    predicate = expression()
    if position != len(tokens):
        raise StorageError(400, "InvalidInput", f"unexpected text in filter: {text!r}")
    return predicate


# -- tables -------------------------------------------------------------------------------
class MemoryTables(_TableService):
    """Tables in memory: rows by (PartitionKey, RowKey), in key order for queries."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[tuple[str, str], Entity]] = {}

    def _table(self, table: str) -> dict[tuple[str, str], Entity]:
        rows = self._tables.get(table)
        if rows is None:
            raise ResourceNotFound(404, "TableNotFound", f"table {table} does not exist")
        return rows

    async def create_table(self, table: str) -> bool:
        if table in self._tables:
            return False
        self._tables[table] = {}
        return True

    async def delete_table(self, table: str) -> bool:
        return self._tables.pop(table, None) is not None

    async def get_entity(
        self, table: str, partition_key: str, row_key: str, select: Sequence[str] | None = None
    ) -> Entity | None:
        row = self._tables.get(table, {}).get((partition_key, row_key))
        return copy.deepcopy(row) if row is not None else None

    @staticmethod
    def _stored(entity: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> Entity:
        values = {**(base or {}), **{k: v for k, v in entity.items() if v is not None}}
        return Entity(copy.deepcopy(values), etag=_etag(), timestamp=_now())

    def _apply(self, rows: dict[tuple[str, str], Entity], op: TableOperation) -> str | None:
        key = (str(op.entity["PartitionKey"]), str(op.entity["RowKey"]))
        existing = rows.get(key)
        if op.kind == "insert":
            if existing is not None:
                raise Conflict(409, "EntityAlreadyExists", "the entity exists")
            rows[key] = self._stored(op.entity)
        elif op.kind == "upsert":
            base = existing if existing is not None and op.mode == "merge" else None
            rows[key] = self._stored(op.entity, base)
        else:
            if existing is None:
                raise ResourceNotFound(404, "ResourceNotFound", "the entity does not exist")
            if op.etag not in (None, "*") and op.etag != existing.etag:
                raise PreconditionFailed(412, "UpdateConditionNotSatisfied", "stale ETag")
            if op.kind == "delete":
                del rows[key]
                return None
            rows[key] = self._stored(op.entity, existing if op.mode == "merge" else None)
        return rows[key].etag

    async def insert(self, table: str, entity: Mapping[str, Any]) -> str:
        etag = self._apply(self._table(table), TableOperation.insert(entity))
        assert etag is not None
        return etag

    async def upsert(self, table: str, entity: Mapping[str, Any], mode: Mode = "merge") -> str:
        etag = self._apply(self._table(table), TableOperation.upsert(entity, mode))
        assert etag is not None
        return etag

    async def update(
        self, table: str, entity: Mapping[str, Any], etag: str | None = None, mode: Mode = "merge"
    ) -> str:
        etag = etag or getattr(entity, "etag", None)
        if etag is None:
            raise ValueError("update needs an etag (or '*' to match any version)")
        new = self._apply(self._table(table), TableOperation.update(entity, etag, mode))
        assert new is not None
        return new

    async def delete(
        self,
        table: str,
        partition_key: str,
        row_key: str,
        etag: str = "*",
        *,
        missing_ok: bool = False,
    ) -> bool:
        try:
            self._apply(self._table(table), TableOperation.delete(partition_key, row_key, etag))
        except ResourceNotFound:
            if missing_ok:
                return False
            raise
        return True

    async def query_page(
        self,
        table: str,
        filter: str | None = None,
        select: Sequence[str] | None = None,
        top: int | None = None,
        continuation: Continuation | None = None,
    ) -> tuple[list[Entity], Continuation | None]:
        rows = self._table(table)
        predicate = compile_filter(filter) if filter else (lambda _entity: True)
        limit = min(top or 1000, 1000)
        page: list[Entity] = []
        for key in sorted(rows):
            if continuation is not None and key < (continuation[0], continuation[1] or ""):
                continue
            entity = rows[key]
            if not predicate(entity):
                continue
            if len(page) == limit:
                return page, key
            fields = {*select, "PartitionKey", "RowKey"} if select else None
            chosen = {k: v for k, v in entity.items() if fields is None or k in fields}
            page.append(Entity(copy.deepcopy(chosen), etag=entity.etag))
        return page, None

    async def query(
        self,
        table: str,
        filter: str | None = None,
        select: Sequence[str] | None = None,
        top: int | None = None,
    ) -> AsyncIterator[Entity]:
        token: Continuation | None = None
        while True:
            page, token = await self.query_page(table, filter, select, 1000, token)
            for entity in page:
                yield entity
                if top is not None:
                    top -= 1
                    if top <= 0:
                        return
            if token is None:
                return

    async def submit_transaction(
        self, table: str, operations: Sequence[TableOperation]
    ) -> list[str | None]:
        if not operations:
            raise ValueError("a transaction needs at least one operation")
        if len(operations) > MAX_BATCH:
            raise ValueError(f"a transaction takes at most {MAX_BATCH} operations")
        partitions = {str(op.entity["PartitionKey"]) for op in operations}
        if len(partitions) > 1:
            raise ValueError("a transaction covers one partition")
        rows = self._table(table)
        trial = dict(rows)  # all or nothing: applied to a copy, kept only if all succeed
        etags: list[str | None] = []
        for index, op in enumerate(operations):
            try:
                etags.append(self._apply(trial, op))
            except StorageError as error:
                raise BatchError(error.status, error.code, error.message, index) from error
        rows.clear()
        rows.update(trial)
        return etags


# -- queues -------------------------------------------------------------------------------
@dataclass
class _Stored:
    id: str
    text: str
    inserted: datetime
    visible_at: float
    pop_receipt: str = ""
    dequeue_count: int = 0


class MemoryQueues(QueueService):
    """Queues in memory, with visibility timeouts measured on the monotonic clock."""

    def __init__(self) -> None:
        self._queues: dict[str, dict[str, _Stored]] = {}

    def _queue(self, queue: str) -> dict[str, _Stored]:
        messages = self._queues.get(queue)
        if messages is None:
            raise ResourceNotFound(404, "QueueNotFound", f"queue {queue} does not exist")
        return messages

    async def create_queue(self, queue: str) -> bool:
        if queue in self._queues:
            return False
        self._queues[queue] = {}
        return True

    async def delete_queue(self, queue: str) -> bool:
        return self._queues.pop(queue, None) is not None

    async def list_queues(self, prefix: str | None = None) -> builtins.list[str]:
        return sorted(q for q in self._queues if not prefix or q.startswith(prefix))

    async def approximate_count(self, queue: str) -> int:
        return len(self._queue(queue))

    async def clear(self, queue: str) -> None:
        self._queue(queue).clear()

    async def send(
        self, queue: str, text: str, visibility_timeout: int = 0, ttl: int | None = None
    ) -> SentMessage:
        if len(text.encode("utf-8")) > MAX_MESSAGE_BYTES:
            raise ValueError("message is over the 64 KiB limit")
        now = _now()
        stored = _Stored(uuid.uuid4().hex, text, now, time.monotonic() + visibility_timeout)
        self._queue(queue)[stored.id] = stored
        visible = now + timedelta(seconds=visibility_timeout)
        return SentMessage(stored.id, "", now, now + timedelta(days=7), visible)

    async def receive(
        self, queue: str, max_messages: int = 32, visibility_timeout: int = 30
    ) -> builtins.list[QueueMessage]:
        now = time.monotonic()
        received: list[QueueMessage] = []
        for stored in self._queue(queue).values():
            if len(received) == max_messages:
                break
            if stored.visible_at > now:
                continue
            stored.visible_at = now + visibility_timeout
            stored.pop_receipt = uuid.uuid4().hex
            stored.dequeue_count += 1
            received.append(self._received(stored))
        return received

    @staticmethod
    def _received(stored: _Stored) -> QueueMessage:
        return QueueMessage(
            id=stored.id,
            pop_receipt=stored.pop_receipt,
            text=stored.text,
            dequeue_count=stored.dequeue_count,
            insertion_time=stored.inserted,
            expiration_time=stored.inserted + timedelta(days=7),
            next_visible_time=_now(),
        )

    async def peek(self, queue: str, max_messages: int = 32) -> builtins.list[QueueMessage]:
        now = time.monotonic()
        visible = [m for m in self._queue(queue).values() if m.visible_at <= now]
        return [self._received(m) for m in visible[:max_messages]]

    def _held(self, queue: str, message_id: str, pop_receipt: str) -> _Stored:
        stored = self._queue(queue).get(message_id)
        if stored is None:
            raise ResourceNotFound(404, "MessageNotFound", "the message does not exist")
        if stored.pop_receipt != pop_receipt:
            raise StorageError(400, "PopReceiptMismatch", "the pop receipt does not match")
        return stored

    async def delete(self, queue: str, message_id: str, pop_receipt: str) -> None:
        self._held(queue, message_id, pop_receipt)
        del self._queue(queue)[message_id]

    async def update_visibility(
        self,
        queue: str,
        message_id: str,
        pop_receipt: str,
        visibility_timeout: int,
        text: str | None = None,
    ) -> str:
        stored = self._held(queue, message_id, pop_receipt)
        stored.visible_at = time.monotonic() + visibility_timeout
        stored.pop_receipt = uuid.uuid4().hex
        if text is not None:
            stored.text = text
        return stored.pop_receipt


# -- blobs --------------------------------------------------------------------------------
class MemoryBlobs(BlobService):
    """Block blobs in memory."""

    def __init__(self) -> None:
        self._containers: dict[str, dict[str, tuple[bytes, str, str]]] = {}

    def _container(self, container: str) -> dict[str, tuple[bytes, str, str]]:
        blobs = self._containers.get(container)
        if blobs is None:
            raise ResourceNotFound(404, "ContainerNotFound", f"container {container} is absent")
        return blobs

    async def create_container(self, container: str) -> bool:
        if container in self._containers:
            return False
        self._containers[container] = {}
        return True

    async def delete_container(self, container: str) -> bool:
        return self._containers.pop(container, None) is not None

    async def upload(
        self,
        container: str,
        name: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        overwrite: bool = True,
    ) -> str:
        blobs = self._container(container)
        if not overwrite and name in blobs:
            raise Conflict(409, "BlobAlreadyExists", "the blob exists")
        etag = _etag()
        blobs[name] = (bytes(data), content_type, etag)
        return etag

    async def download(self, container: str, name: str) -> bytes:
        blob = self._container(container).get(name)
        if blob is None:
            raise ResourceNotFound(404, "BlobNotFound", "the blob does not exist")
        return blob[0]

    async def delete(self, container: str, name: str, *, missing_ok: bool = False) -> bool:
        if self._container(container).pop(name, None) is None:
            if missing_ok:
                return False
            raise ResourceNotFound(404, "BlobNotFound", "the blob does not exist")
        return True

    async def list(self, container: str, prefix: str | None = None) -> builtins.list[BlobInfo]:
        return [
            BlobInfo(name, len(data), etag, content_type, None)
            for name, (data, content_type, etag) in sorted(self._container(container).items())
            if not prefix or name.startswith(prefix)
        ]


@dataclass
class MemoryAccount:
    """Stands in for a `StorageAccount`: a name, call counters, nothing to close."""

    name: str = "memory"

    def __post_init__(self) -> None:
        self.stats: dict[str, int] = {}

    def reset_stats(self) -> dict[str, int]:
        stats, self.stats = self.stats, {}
        return stats

    async def close(self) -> None:
        return None


def memory_services() -> tuple[MemoryTables, MemoryQueues, MemoryBlobs]:
    """Fresh, empty in-memory table, queue and blob services."""
    return MemoryTables(), MemoryQueues(), MemoryBlobs()
