"""Large payloads live in blobs; rows and messages carry a short reference instead.

A reference is a JSON object `{"$blob": name}`: stored JSON never starts that way for an
event or a message of ours, so the two cannot be confused, and no reference ever reaches a
user: everything read back is resolved first.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from orchestration.azure import BlobService

BLOB_KEY = "$blob"


class PayloadStore:
    """Moves texts over a threshold to the hub's blob container and back."""

    def __init__(self, blobs: BlobService, container: str, threshold: int = 16_000) -> None:
        self._blobs = blobs
        self._container = container
        self.threshold = threshold

    async def create(self) -> None:
        await self._blobs.create_container(self._container)

    async def store(self, prefix: str, text: str) -> dict[str, Any]:
        """Upload `text` and return its reference."""
        name = f"{prefix}/{uuid.uuid4().hex}"
        await self._blobs.upload(self._container, name, text.encode("utf-8"))
        return {BLOB_KEY: name}

    async def fetch(self, reference: dict[str, Any]) -> str:
        data = await self._blobs.download(self._container, reference[BLOB_KEY])
        return data.decode("utf-8")

    async def delete(self, reference: dict[str, Any]) -> None:
        await self._blobs.delete(self._container, reference[BLOB_KEY], missing_ok=True)

    async def resolve_json(self, value: dict[str, Any]) -> dict[str, Any]:
        if BLOB_KEY in value and len(value) == 1:
            loaded: dict[str, Any] = json.loads(await self.fetch(value))
            return loaded
        return value

    async def delete_prefix(self, prefix: str) -> int:
        removed = 0
        for blob in await self._blobs.list(self._container, prefix=f"{prefix}/"):
            await self._blobs.delete(self._container, blob.name, missing_ok=True)
            removed += 1
        return removed


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and BLOB_KEY in value and len(value) == 1


def reference_in(text: str | None) -> dict[str, Any] | None:
    """The blob reference a stored value is, or None when it holds its text itself."""
    if text is None or not text.startswith('{"$blob"'):
        return None
    value = json.loads(text)
    return value if is_reference(value) else None
