"""A light async client for Azure Storage (Tables, Queues, Blobs) over aiohttp, used by the
engine's task hub and the local host alike.

Requests are signed with Shared Key directly (no Azure SDK on this path), which costs a
fraction of the SDK's client CPU per call (`bench/storage_transport.py` measures both; the
README holds the figures). One `StorageAccount` owns one pooled
aiohttp session and the per-operation call counters (``account.stats``)::

    async with StorageAccount.from_connection_string(conn_str) as account:
        tables = TableService(account)
        await tables.create_table("History")
        etag = await tables.upsert("History", {"PartitionKey": "i1", "RowKey": "0"})
"""

from __future__ import annotations

from orchestration.azure.blobs import BlobInfo, BlobService
from orchestration.azure.connection import (
    ConnectionSettings,
    StorageAccount,
    parse_connection_string,
)
from orchestration.azure.errors import (
    BatchError,
    Conflict,
    OutcomeUnknown,
    PreconditionFailed,
    RequestTooLarge,
    ResourceExists,
    ResourceNotFound,
    ServerBusy,
    StorageError,
)
from orchestration.azure.queues import QueueMessage, QueueService, SentMessage
from orchestration.azure.retry import NO_RETRY, RetryPolicy
from orchestration.azure.tables import (
    Continuation,
    Entity,
    TableOperation,
    TableService,
    odata_string,
)

__all__ = [
    "NO_RETRY",
    "BatchError",
    "BlobInfo",
    "BlobService",
    "Conflict",
    "ConnectionSettings",
    "Continuation",
    "Entity",
    "OutcomeUnknown",
    "PreconditionFailed",
    "QueueMessage",
    "QueueService",
    "RequestTooLarge",
    "ResourceExists",
    "ResourceNotFound",
    "RetryPolicy",
    "SentMessage",
    "ServerBusy",
    "StorageAccount",
    "StorageError",
    "TableOperation",
    "TableService",
    "odata_string",
    "parse_connection_string",
]
