"""Blob trigger receipts: which blob versions a function has processed, across processes and
restarts, as the WebJobs SDK keeps them.

A receipt is an empty blob in `azure-webjobs-hosts`,
`blobreceipts/{hostId}/Host.Functions.{function}/{etag}/{container}/{blob}`, created with
If-None-Match: * and metadata `incomplete=true`. The process holding its lease runs the
function; each attempt is counted in its metadata before it runs (so a crash counts too), and
success, or the poison message after the last attempt, completes it (the `incomplete` mark
goes). A process that dies mid-run loses nothing: the lease expires and another takes over.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from orchestration.bindings.store import BlobItem
from orchestration.host.storage import HOSTS_CONTAINER, StorageAccount

POISON_QUEUE = "webjobs-blobtrigger-poison"
LEASE_SECONDS = 15  # the shortest lease storage grants: a dead claimant's blob comes back soon
MAX_BLOB_NAME = 1024
INCOMPLETE = "incomplete"
ATTEMPTS = "attempts"


def function_id(function_name: str) -> str:
    """The host's id of a function, as its receipts and locks name it."""
    return f"Host.Functions.{function_name}"


def receipt_path(host_id: str, function_name: str, etag: str, container: str, blob: str) -> str:
    """The receipt blob of one version (ETag) of one blob for one function. A name too long
    for a blob keeps its start and ends in a digest of the whole, so it stays unique."""
    path = f"blobreceipts/{host_id}/{function_id(function_name)}/{etag.strip(chr(34))}/"
    path += f"{container}/{blob}"
    if len(path) <= MAX_BLOB_NAME:
        return path
    digest = hashlib.sha256(path.encode("utf-8")).hexdigest()
    return f"{path[: MAX_BLOB_NAME - len(digest) - 1]}-{digest}"


def poison_message(function_name: str, container: str, blob: str, etag: str) -> str:
    """The JSON the WebJobs SDK puts on `webjobs-blobtrigger-poison` for a blob it gave up on."""
    return json.dumps(
        {
            "Type": "BlobTrigger",
            "FunctionId": function_id(function_name),
            "BlobType": "BlockBlob",
            "ContainerName": container,
            "BlobName": blob,
            "ETag": etag,
        }
    )


def pending(
    listed: Iterable[BlobItem], completed: Mapping[str, str], running: set[tuple[str, str]]
) -> list[BlobItem]:
    """The listed blob versions this process has not seen completed and is not running."""
    return [
        item
        for item in listed
        if completed.get(item.name) != item.etag and (item.name, item.etag) not in running
    ]


class Receipt(Enum):
    """Why a claim did not give the caller the blob."""

    COMPLETED = "completed"
    """Processed already (by any process): remember it and skip it."""
    BUSY = "busy"
    """Another process holds it (or it changed under us): look again at the next scan."""


@dataclass(frozen=True)
class Claim:
    """A receipt whose lease this process holds; `attempts` made before this one."""

    path: str
    lease_id: str
    attempts: int


class BlobReceipts:
    """Claim, count, complete and release receipts in the host's storage account."""

    def __init__(self, account: StorageAccount, lease_seconds: int = LEASE_SECONDS) -> None:
        self.account = account
        self.lease_seconds = lease_seconds

    async def claim(self, path: str) -> Claim | Receipt:
        """Take the receipt for this process, creating it when it is the first sight."""
        created = await self.account.create_marker(
            HOSTS_CONTAINER, path, {INCOMPLETE: "true", ATTEMPTS: "0"}
        )
        if not created:
            state = await self.account.marker_state(HOSTS_CONTAINER, path)
            if state is None:
                return Receipt.BUSY
            if INCOMPLETE not in state.metadata:
                return Receipt.COMPLETED
            if state.leased:
                return Receipt.BUSY
        lease = await self.account.try_lease(HOSTS_CONTAINER, path, self.lease_seconds)
        if lease is None:
            return Receipt.BUSY
        # Read again under the lease: another process may have completed it in between.
        state = await self.account.marker_state(HOSTS_CONTAINER, path)
        if state is None or INCOMPLETE not in state.metadata:
            await self.account.release_lease(HOSTS_CONTAINER, path, lease)
            return Receipt.BUSY if state is None else Receipt.COMPLETED
        return Claim(path, lease, _int(state.metadata.get(ATTEMPTS)))

    async def begin_attempt(self, claim: Claim) -> bool:
        """Count the attempt about to run; False when the lease was lost."""
        metadata = {INCOMPLETE: "true", ATTEMPTS: str(claim.attempts + 1)}
        return await self.account.set_marker_metadata(
            HOSTS_CONTAINER, claim.path, metadata, claim.lease_id
        )

    async def renew(self, claim: Claim) -> bool:
        """Keep the lease while the function runs; False when it was lost."""
        return await self.account.renew_lease(HOSTS_CONTAINER, claim.path, claim.lease_id)

    async def complete(self, claim: Claim, attempts: int, outcome: str) -> None:
        """Mark the receipt done (no process runs this version again) and release it."""
        metadata = {
            ATTEMPTS: str(attempts),
            "outcome": outcome,
            "completed": datetime.now(UTC).isoformat(),
        }
        await self.account.set_marker_metadata(
            HOSTS_CONTAINER, claim.path, metadata, claim.lease_id
        )
        await self.release(claim)

    async def release(self, claim: Claim) -> None:
        """Let any process (this one too) try again at once."""
        await self.account.release_lease(HOSTS_CONTAINER, claim.path, claim.lease_id)


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0
