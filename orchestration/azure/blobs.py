"""Azure Blob storage (block blobs only) over plain aiohttp.

Uploads are one Put Blob (fine up to 256 MiB at current service versions; we store a few
MiB at most); downloads one Get Blob.
"""

from __future__ import annotations

import builtins
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from orchestration.azure._http import SharedKeyClient
from orchestration.azure.connection import StorageAccount
from orchestration.azure.errors import Conflict, ResourceNotFound

API_VERSION = "2021-08-06"
MAX_PUT_BLOB = 256 * 1024 * 1024
_CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$")


@dataclass(frozen=True, slots=True)
class BlobInfo:
    name: str
    size: int
    etag: str
    content_type: str
    last_modified: datetime | None


def _check_container(name: str) -> str:
    if not _CONTAINER_NAME.match(name):
        raise ValueError(
            f"invalid container name {name!r}: 3-63 lowercase letters, digits, single hyphens"
        )
    return name


def _blob_path(container: str, name: str) -> str:
    if not name or len(name) > 1024:
        raise ValueError("blob name must be 1-1024 characters")
    return f"/{_check_container(container)}/{quote(name, safe='/~')}"


class BlobService:
    """Blob operations for one account; cheap to create, shares the account's session."""

    def __init__(self, account: StorageAccount) -> None:
        self.account = account
        self._client = SharedKeyClient(account, account.settings.blob_endpoint, API_VERSION)

    async def create_container(self, container: str) -> bool:
        """Create ``container``; False (no error) when it already exists."""
        try:
            await self._client.call(
                "blob.create_container",
                "PUT",
                f"/{_check_container(container)}",
                query=[("restype", "container")],
                idempotent=True,
            )
        except Conflict as exc:
            if exc.code == "ContainerAlreadyExists":
                return False
            raise
        return True

    async def delete_container(self, container: str) -> bool:
        """Delete ``container``; False (no error) when it does not exist."""
        try:
            await self._client.call(
                "blob.delete_container",
                "DELETE",
                f"/{_check_container(container)}",
                query=[("restype", "container")],
                idempotent=True,
            )
        except ResourceNotFound:
            return False
        return True

    async def upload(
        self,
        container: str,
        name: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        overwrite: bool = True,
    ) -> str:
        """Write a block blob in one request; return its ETag. With ``overwrite=False`` an
        existing blob raises Conflict (BlobAlreadyExists)."""
        if len(data) > MAX_PUT_BLOB:
            raise ValueError(f"blob of {len(data)} bytes is over the {MAX_PUT_BLOB} Put Blob limit")
        headers = {"x-ms-blob-type": "BlockBlob", "Content-Type": content_type}
        if not overwrite:
            headers["If-None-Match"] = "*"
        resp = await self._client.call(
            "blob.upload",
            "PUT",
            _blob_path(container, name),
            body=data if isinstance(data, bytes) else bytes(data),
            headers=headers,
            idempotent=overwrite,
        )
        return resp.headers["ETag"]

    async def download(self, container: str, name: str) -> bytes:
        """The blob's content; ResourceNotFound (BlobNotFound) when absent."""
        resp = await self._client.call(
            "blob.download", "GET", _blob_path(container, name), idempotent=True
        )
        return resp.body

    async def delete(self, container: str, name: str, *, missing_ok: bool = False) -> bool:
        """Delete a blob (and its snapshots); False when absent and ``missing_ok``."""
        try:
            await self._client.call(
                "blob.delete",
                "DELETE",
                _blob_path(container, name),
                headers={"x-ms-delete-snapshots": "include"},
                idempotent=True,
            )
        except ResourceNotFound:
            if missing_ok:
                return False
            raise
        return True

    async def list(self, container: str, prefix: str | None = None) -> builtins.list[BlobInfo]:
        """The container's blobs (names starting with ``prefix``), following markers."""
        out: builtins.list[BlobInfo] = []
        marker: str | None = None
        while True:
            query = [("restype", "container"), ("comp", "list")]
            if prefix:
                query.append(("prefix", prefix))
            if marker:
                query.append(("marker", marker))
            resp = await self._client.call(
                "blob.list",
                "GET",
                f"/{_check_container(container)}",
                query=query,
                idempotent=True,
            )
            root = ET.fromstring(resp.body)
            for node in root.iter("Blob"):
                props = node.find("Properties")
                if props is None:
                    props = ET.Element("Properties")
                modified = props.findtext("Last-Modified")
                out.append(
                    BlobInfo(
                        name=node.findtext("Name") or "",
                        size=int(props.findtext("Content-Length") or 0),
                        etag=props.findtext("Etag") or "",
                        content_type=props.findtext("Content-Type") or "",
                        last_modified=parsedate_to_datetime(modified) if modified else None,
                    )
                )
            marker = root.findtext("NextMarker")
            if not marker:
                return out
