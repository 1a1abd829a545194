"""The storage side of blob, table and queue bindings: the Azure SDK's aio clients, one set
per connection string.

Bindings move users' data (blobs of any size, entities of any shape), not the engine's hot
path, so they use the SDK (streams, every auth form a connection string can carry) rather
than the light transport the task hub uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import EntityProperty, UpdateMode
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueServiceClient

from orchestration.azure.connection import split_connection_string
from orchestration.bindings.values import BlobContent

_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$")
_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
_BAD_KEY_CHARS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
MAX_BATCH = 100


class BindingTargetError(ValueError):
    """A binding names a container, blob, table, key or queue that storage cannot hold."""


class BindingConnectionError(ValueError):
    """A binding's connection setting holds no usable connection string."""


DEFAULT_CONNECTION = "AzureWebJobsStorage"


def connection_setting(settings: Mapping[str, str], name: str | None) -> tuple[str, str | None]:
    """(the setting name, its connection string or None) for a binding's `connection`, as
    the Functions host looks it up: the name itself, then `AzureWebJobs<name>`;
    AzureWebJobsStorage when the binding names none."""
    setting = name or DEFAULT_CONNECTION
    for candidate in (setting, f"AzureWebJobs{setting}"):
        value = settings.get(candidate)
        if value:
            return setting, value
    return setting, None


def normalize_connection_string(value: str) -> str:
    """One spelling per account: `UseDevelopmentStorage=true` expanded to the emulator's
    explicit string (the SDKs' parsers do not all take it), as the host's storage does."""
    try:
        parts = split_connection_string(value)
    except ValueError as err:
        raise BindingConnectionError(f"invalid storage connection string: {err}") from err
    return ";".join(f"{k}={v}" for k, v in parts.items()) + ";"


def check_container(name: str) -> str:
    if not _CONTAINER_NAME.match(name):
        raise BindingTargetError(
            f"invalid container name {name!r}: 3-63 lowercase letters, digits and single hyphens"
        )
    return name


def check_blob_name(name: str) -> str:
    if not name or len(name) > 1024 or name.endswith(("/", ".")):
        raise BindingTargetError(
            f"invalid blob name {name!r}: 1-1024 characters, not ending in / or ."
        )
    return name


def check_table(name: str) -> str:
    if not _TABLE_NAME.match(name):
        raise BindingTargetError(
            f"invalid table name {name!r}: 3-63 letters and digits, starting with a letter"
        )
    return name


def check_key(value: str, what: str) -> str:
    if len(value.encode("utf-8")) > 1024 or _BAD_KEY_CHARS.search(value):
        raise BindingTargetError(
            f"invalid {what} {value!r}: at most 1 KiB, without / \\ # ? or control characters"
        )
    return value


def check_queue(name: str) -> str:
    name = name.lower()
    if not _QUEUE_NAME.match(name):
        raise BindingTargetError(
            f"invalid queue name {name!r}: 3-63 lowercase letters, digits and single hyphens"
        )
    return name


def odata_quote(value: str) -> str:
    """A value placed inside an OData string literal: single quotes doubled."""
    return value.replace("'", "''")


def quoted_etag(etag: str) -> str:
    """An ETag in its HTTP form, `"0x..."` (a listing gives it bare, a write quoted)."""
    return etag if etag.startswith(('"', "W/")) else f'"{etag}"'


@dataclass(frozen=True)
class BlobItem:
    """A listed blob: what a blob trigger needs to tell new and changed blobs apart (`etag`
    in its quoted HTTP form, as writes and properties give it)."""

    name: str
    etag: str
    size: int
    last_modified: datetime | None


class BindingStore:
    """Blob, table and queue operations on one storage account (one connection string)."""

    def __init__(self, connection_string: str) -> None:
        self.connection_string = connection_string
        self._blobs = BlobServiceClient.from_connection_string(connection_string)
        self._tables = TableServiceClient.from_connection_string(connection_string)
        self._queues = QueueServiceClient.from_connection_string(connection_string)
        self._containers: set[str] = set()
        self._known_tables: set[str] = set()
        self._known_queues: set[str] = set()

    async def close(self) -> None:
        await asyncio.gather(self._blobs.close(), self._tables.close(), self._queues.close())

    # blobs

    async def read_blob(
        self, container: str, name: str, etag: str | None = None
    ) -> BlobContent | None:
        """The blob with its properties, or None when it (or its container) does not exist,
        or, given `etag`, when it is no longer that version."""
        client = self._blobs.get_blob_client(check_container(container), check_blob_name(name))
        condition: dict[str, Any] = {}
        if etag is not None:
            condition = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        try:
            stream = await client.download_blob(**condition)
            data = await stream.readall()
        except (ResourceNotFoundError, ResourceModifiedError):
            return None
        props = stream.properties
        settings = props.content_settings
        return BlobContent(
            container=container,
            name=name,
            data=data,
            uri=client.url,
            properties={
                "ETag": props.etag,
                "Length": props.size,
                "LastModified": props.last_modified.isoformat() if props.last_modified else None,
                "ContentType": settings.content_type if settings else None,
                "BlobType": str(props.blob_type),
            },
            metadata=dict(props.metadata or {}),
        )

    async def write_blob(
        self, container: str, name: str, data: bytes, content_type: str | None = None
    ) -> str:
        """Write (overwrite) a block blob, creating its container; return its ETag."""
        check_container(container)
        client = self._blobs.get_blob_client(container, check_blob_name(name))
        settings = ContentSettings(content_type=content_type or "application/octet-stream")
        try:
            result = await client.upload_blob(data, overwrite=True, content_settings=settings)
        except ResourceNotFoundError:
            await self.ensure_container(container)
            result = await client.upload_blob(data, overwrite=True, content_settings=settings)
        return str(result["etag"])

    async def ensure_container(self, container: str) -> None:
        if container in self._containers:
            return
        with contextlib.suppress(ResourceExistsError):
            await self._blobs.create_container(check_container(container))
        self._containers.add(container)

    async def list_blobs(self, container: str, prefix: str = "") -> AsyncIterator[BlobItem]:
        """The container's blobs (nothing when it does not exist), page by page."""
        client = self._blobs.get_container_client(check_container(container))
        try:
            async for blob in client.list_blobs(name_starts_with=prefix or None):
                yield BlobItem(
                    blob.name, quoted_etag(str(blob.etag)), int(blob.size or 0), blob.last_modified
                )
        except ResourceNotFoundError:
            return

    def blob_url(self, container: str, name: str) -> str:
        return str(self._blobs.get_blob_client(container, name).url)

    # tables

    async def read_entity(
        self, table: str, partition_key: str, row_key: str
    ) -> dict[str, Any] | None:
        """One entity by its keys, or None."""
        client = self._tables.get_table_client(check_table(table))
        try:
            entity = await client.get_entity(
                check_key(partition_key, "partition key"), check_key(row_key, "row key")
            )
        except ResourceNotFoundError:
            return None
        return _entity_dict(entity)

    async def query_entities(
        self, table: str, partition_key: str | None, odata_filter: str | None, take: int | None
    ) -> list[dict[str, Any]]:
        """Entities of a partition and/or a filter, at most `take` (a missing table: none)."""
        client = self._tables.get_table_client(check_table(table))
        clauses = []
        if partition_key is not None:
            clauses.append(
                f"PartitionKey eq '{odata_quote(check_key(partition_key, 'partition key'))}'"
            )
        if odata_filter:
            clauses.append(f"({odata_filter})")
        query = " and ".join(clauses)
        found: list[dict[str, Any]] = []
        per_page = min(take, 1000) if take is not None else None
        try:
            pages = (
                client.query_entities(query, results_per_page=per_page)
                if query
                else client.list_entities(results_per_page=per_page)
            )
            async for entity in pages:
                found.append(_entity_dict(entity))
                if take is not None and len(found) >= take:
                    break
        except ResourceNotFoundError:
            return []
        return found

    async def write_entities(self, table: str, entities: Sequence[Mapping[str, Any]]) -> None:
        """Upsert (replace) entities, creating the table; one batch per partition and 100."""
        check_table(table)
        for entity in entities:
            check_key(str(entity["PartitionKey"]), "partition key")
            check_key(str(entity["RowKey"]), "row key")
        await self._ensure_table(table)
        client = self._tables.get_table_client(table)
        by_partition: dict[str, list[Mapping[str, Any]]] = {}
        for entity in entities:
            by_partition.setdefault(str(entity["PartitionKey"]), []).append(entity)
        for group in by_partition.values():
            for start in range(0, len(group), MAX_BATCH):
                chunk = group[start : start + MAX_BATCH]
                if len(chunk) == 1:
                    await client.upsert_entity(dict(chunk[0]), mode=UpdateMode.REPLACE)
                else:
                    await client.submit_transaction(
                        [("upsert", dict(e), {"mode": UpdateMode.REPLACE}) for e in chunk]
                    )

    async def _ensure_table(self, table: str) -> None:
        if table in self._known_tables:
            return
        with contextlib.suppress(ResourceExistsError):
            await self._tables.create_table(table)
        self._known_tables.add(table)

    # queues

    async def send_messages(self, queue: str, contents: list[str]) -> None:
        """Enqueue already-encoded messages, creating the queue."""
        check_queue(queue)
        client = self._queues.get_queue_client(queue)
        if queue not in self._known_queues:
            with contextlib.suppress(ResourceExistsError):
                await client.create_queue()
            self._known_queues.add(queue)
        for content in contents:
            await client.send_message(content)


def _plain(value: Any) -> Any:
    # What a JSON document can hold: Int64 and untyped-by-Python values arrive wrapped.
    if isinstance(value, EntityProperty):
        value = value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _entity_dict(entity: Mapping[str, Any]) -> dict[str, Any]:
    out = {key: _plain(value) for key, value in entity.items()}
    metadata = getattr(entity, "metadata", None) or {}
    timestamp = metadata.get("timestamp")
    if timestamp is not None:
        out["Timestamp"] = timestamp
    return out


class BindingStores:
    """One BindingStore per storage account, created on first use, closed together."""

    def __init__(self) -> None:
        self._stores: dict[str, BindingStore] = {}

    def get(self, connection_string: str) -> BindingStore:
        """The store of this connection string (however it spells the account);
        BindingConnectionError when the string is malformed."""
        store = self._stores.get(connection_string)
        if store is None:
            key = normalize_connection_string(connection_string)
            store = self._stores.get(key)
            if store is None:
                store = self._stores[key] = BindingStore(key)
            self._stores[connection_string] = store
        return store

    async def close(self) -> None:
        stores, self._stores = {id(s): s for s in self._stores.values()}, {}
        await asyncio.gather(*(store.close() for store in stores.values()))
