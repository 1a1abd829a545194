"""All storage access of the host (queues, blobs) behind one small API.

Queue operations, the listeners' hot path, go through the project's light transport
(aiohttp with Shared Key signing: a fraction of the SDK's CPU per call, and the SDK's calls
held the event loop long enough to delay the requests and timers behind them; the README
holds the figures);
blob operations (timer leases and status, blob trigger receipts: rare) and queues reached by
a SAS-only connection string use the SDK's aio clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import BlobLeaseClient, BlobServiceClient
from azure.storage.queue.aio import QueueServiceClient

from orchestration.azure import QueueService
from orchestration.azure import ResourceNotFound as LightNotFound
from orchestration.azure import StorageAccount as LightAccount
from orchestration.azure.connection import split_connection_string

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
HOSTS_CONTAINER = "azure-webjobs-hosts"  # the host's own blobs: locks, timer status, receipts


class StorageConfigError(ValueError):
    """A connection setting is missing or unusable."""


def connection_parts(value: str) -> dict[str, str]:
    """Split `Key=Value;...` into a dict, resolving UseDevelopmentStorage=true (the parser
    the engine's storage uses too)."""
    try:
        return split_connection_string(value)
    except ValueError as err:
        raise StorageConfigError(str(err)) from err


def normalize_connection_string(value: str) -> str:
    """Expand UseDevelopmentStorage=true into the explicit Azurite connection string."""
    return ";".join(f"{k}={v}" for k, v in connection_parts(value).items()) + ";"


def loopback_ports(value: str) -> tuple[str, int, int, int] | None:
    """(host, blob, queue, table ports) when every endpoint is on loopback, else None."""
    parts = connection_parts(value)
    ports: list[int] = []
    hosts: set[str] = set()
    for key in ("BlobEndpoint", "QueueEndpoint", "TableEndpoint"):
        if key not in parts:
            return None
        url = urlparse(parts[key])
        if url.hostname not in LOOPBACK_HOSTS or url.port is None:
            return None
        hosts.add(url.hostname)
        ports.append(url.port)
    host = "127.0.0.1" if hosts & {"127.0.0.1", "localhost"} else hosts.pop()
    return host, ports[0], ports[1], ports[2]


@dataclass(frozen=True)
class RawQueueMessage:
    """A received queue message, its content still encoded as stored."""

    id: str
    pop_receipt: str
    content: str
    dequeue_count: int
    inserted_on: datetime | None
    expires_on: datetime | None
    next_visible_on: datetime | None


@dataclass(frozen=True)
class BlobState:
    """What a marker blob (a lock, a receipt) says: its metadata (keys in lower case) and
    whether its lease is held."""

    metadata: dict[str, str]
    leased: bool


class StorageAccount:
    """Queue and blob operations on one storage account (one connection string)."""

    def __init__(self, conn_str: str) -> None:
        self.connection_string = normalize_connection_string(conn_str)
        self._queues = QueueServiceClient.from_connection_string(self.connection_string)
        self._blobs = BlobServiceClient.from_connection_string(self.connection_string)
        self._light: QueueService | None = None
        self._light_account: LightAccount | None = None
        with contextlib.suppress(ValueError):  # a SAS-only string: the SDK serves queues
            self._light_account = LightAccount.from_connection_string(self.connection_string)
            self._light = QueueService(self._light_account)
        self._known_queues: set[str] = set()
        self._known_containers: set[str] = set()

    async def close(self) -> None:
        """Close the underlying HTTP sessions."""
        await self._queues.close()
        await self._blobs.close()
        if self._light_account is not None:
            await self._light_account.close()

    # queues

    async def ensure_queue(self, name: str) -> None:
        """Create the queue unless this process already knows it exists."""
        if name in self._known_queues:
            return
        if self._light is not None:
            await self._light.create_queue(name)
        else:
            with contextlib.suppress(ResourceExistsError):
                await self._queues.get_queue_client(name).create_queue()
        self._known_queues.add(name)

    async def send(self, queue: str, content: str, visibility_timeout: int | None = None) -> None:
        """Enqueue one message whose content is already encoded."""
        await self.ensure_queue(queue)
        if self._light is not None:
            await self._light.send(queue, content, visibility_timeout=visibility_timeout or 0)
            return
        client = self._queues.get_queue_client(queue)
        await client.send_message(content, visibility_timeout=visibility_timeout)

    async def receive(
        self, queue: str, count: int, visibility_timeout: int
    ) -> list[RawQueueMessage]:
        """One receive call: up to `count` (1-32) messages, hidden for visibility_timeout s."""
        if self._light is not None:
            return [
                RawQueueMessage(
                    id=m.id,
                    pop_receipt=m.pop_receipt,
                    content=m.text,
                    dequeue_count=m.dequeue_count,
                    inserted_on=m.insertion_time,
                    expires_on=m.expiration_time,
                    next_visible_on=m.next_visible_time,
                )
                for m in await self._light.receive(queue, count, max(visibility_timeout, 1))
            ]
        client = self._queues.get_queue_client(queue)
        pages = client.receive_messages(
            messages_per_page=count, visibility_timeout=visibility_timeout
        ).by_page()
        try:
            page = await pages.__anext__()
        except StopAsyncIteration:
            return []
        return [
            RawQueueMessage(
                id=m.id,
                pop_receipt=m.pop_receipt or "",
                content=m.content if isinstance(m.content, str) else str(m.content),
                dequeue_count=int(m.dequeue_count or 0),
                inserted_on=m.inserted_on,
                expires_on=m.expires_on,
                next_visible_on=m.next_visible_on,
            )
            async for m in page
        ]

    async def delete(self, queue: str, message_id: str, pop_receipt: str) -> None:
        """Delete a message; a message already gone is not an error."""
        if self._light is not None:
            with contextlib.suppress(LightNotFound):
                await self._light.delete(queue, message_id, pop_receipt)
            return
        with contextlib.suppress(ResourceNotFoundError):
            await self._queues.get_queue_client(queue).delete_message(message_id, pop_receipt)

    async def set_visibility(
        self, queue: str, message_id: str, pop_receipt: str, visibility_timeout: int
    ) -> str:
        """Change when the message becomes visible again; return the new pop receipt."""
        if self._light is not None:
            return await self._light.update_visibility(
                queue, message_id, pop_receipt, visibility_timeout
            )
        client = self._queues.get_queue_client(queue)
        updated = await client.update_message(
            message_id, pop_receipt, visibility_timeout=visibility_timeout
        )
        return str(updated.pop_receipt)

    # blobs

    async def _ensure_container(self, name: str) -> None:
        if name in self._known_containers:
            return
        with contextlib.suppress(ResourceExistsError):
            await self._blobs.create_container(name)
        self._known_containers.add(name)

    async def read_json(self, container: str, blob: str) -> Any | None:
        """The JSON document stored in a blob, or None when there is none."""
        try:
            stream = await self._blobs.get_blob_client(container, blob).download_blob()
            return json.loads(await stream.readall())
        except (ResourceNotFoundError, ValueError):
            return None

    async def write_json(self, container: str, blob: str, value: Any) -> None:
        """Overwrite a blob with a JSON document."""
        await self._ensure_container(container)
        await self._blobs.get_blob_client(container, blob).upload_blob(
            json.dumps(value),
            overwrite=True,
            content_settings=ContentSettings(content_type="application/json"),
        )

    async def acquire_lease(self, container: str, blob: str, seconds: int) -> str | None:
        """Take a blob lease, creating the blob first; None when someone else holds it."""
        await self._ensure_container(container)
        client = self._blobs.get_blob_client(container, blob)
        # Usually it exists already, maybe leased by another host: both are fine.
        with contextlib.suppress(ResourceExistsError, HttpResponseError):
            await client.upload_blob(b"", overwrite=False)
        try:
            lease = await client.acquire_lease(lease_duration=seconds)
        except (ResourceExistsError, HttpResponseError) as err:
            if getattr(err, "status_code", None) == 409:
                return None
            raise
        return str(lease.id)

    async def renew_lease(self, container: str, blob: str, lease_id: str) -> bool:
        """Renew a held lease; False when it was lost."""
        lease = BlobLeaseClient(self._blobs.get_blob_client(container, blob), lease_id)
        try:
            await lease.renew()
        except HttpResponseError:
            return False
        return True

    async def release_lease(self, container: str, blob: str, lease_id: str) -> None:
        """Release a lease so another host can take over at once."""
        lease = BlobLeaseClient(self._blobs.get_blob_client(container, blob), lease_id)
        with contextlib.suppress(HttpResponseError):
            await lease.release()

    async def create_marker(self, container: str, blob: str, metadata: dict[str, str]) -> bool:
        """Create an empty blob with metadata unless one exists (If-None-Match: *); False
        when it existed already."""
        await self._ensure_container(container)
        client = self._blobs.get_blob_client(container, blob)
        try:
            await client.upload_blob(b"", overwrite=False, metadata=metadata)
        except ResourceExistsError:
            return False
        except HttpResponseError as err:
            if err.status_code in (409, 412):  # exists, and leased by someone
                return False
            raise
        return True

    async def marker_state(self, container: str, blob: str) -> BlobState | None:
        """A blob's metadata and whether someone holds its lease; None when it is absent."""
        client = self._blobs.get_blob_client(container, blob)
        try:
            props = await client.get_blob_properties()
        except ResourceNotFoundError:
            return None
        metadata = {str(k).lower(): str(v) for k, v in (props.metadata or {}).items()}
        return BlobState(metadata, str(props.lease.state).lower() == "leased")

    async def try_lease(self, container: str, blob: str, seconds: int) -> str | None:
        """Take the lease of an existing blob; None when someone holds it or it is gone."""
        client = self._blobs.get_blob_client(container, blob)
        try:
            lease = await client.acquire_lease(lease_duration=seconds)
        except ResourceNotFoundError:
            return None
        except HttpResponseError as err:
            if err.status_code == 409:
                return None
            raise
        return str(lease.id)

    async def set_marker_metadata(
        self, container: str, blob: str, metadata: dict[str, str], lease_id: str
    ) -> bool:
        """Replace a leased blob's metadata; False when the lease was lost."""
        client = self._blobs.get_blob_client(container, blob)
        try:
            await client.set_blob_metadata(metadata, lease=lease_id)
        except HttpResponseError as err:
            if err.status_code in (404, 409, 412):
                return False
            raise
        return True


class StorageAccounts:
    """One StorageAccount per distinct connection string, shared by all listeners."""

    def __init__(self) -> None:
        self._accounts: dict[str, StorageAccount] = {}
        self._lock = asyncio.Lock()

    def get(self, conn_str: str) -> StorageAccount:
        """The account for this connection string (created on first use)."""
        key = normalize_connection_string(conn_str)
        account = self._accounts.get(key)
        if account is None:
            account = self._accounts[key] = StorageAccount(key)
        return account

    async def close(self) -> None:
        """Close every account's clients."""
        async with self._lock:
            for account in self._accounts.values():
                await account.close()
            self._accounts.clear()
