"""Instance links: codes that open one instance's management URLs, and nothing else.

A caller of an anonymous starter holds no key, yet Durable Functions' check-status payload
hands it URLs to follow its instance. Those URLs carry a link code instead of a key: an HMAC
of the instance id under a secret kept in the task hub (a blob of the payload container,
created once by whichever process needs it first). The code opens that instance's status,
events and lifecycle operations; listing, purging by filter and every other instance still
need a real key. Deleting the secret's blob revokes every link (and every dashboard
session, `functions.dashboard.sessions`) within five minutes, as each process reads the
secret again (`TaskHub.secret`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from orchestration.azure import (
    BlobService,
    Conflict,
    PreconditionFailed,
    ResourceNotFound,
)

SECRET_BLOB = "hub/instance-links.key"
_PURPOSE = b"orchestration instance link v1\n"


class InstanceLinks:
    """Makes and checks the link code of an instance id."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("an instance link secret must be at least 32 bytes")
        self._secret = secret

    def code(self, instance_id: str) -> str:
        """The code that opens `instance_id`'s management URLs."""
        digest = hmac.new(
            self._secret, _PURPOSE + instance_id.encode("utf-8", "surrogatepass"), hashlib.sha256
        ).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")

    def opens(self, instance_id: str, code: str | None) -> bool:
        """Whether `code` is the link code of `instance_id` (compared in constant time)."""
        if not code:
            return False
        expected = self.code(instance_id).encode("ascii")
        return hmac.compare_digest(expected, code.encode("utf-8", "surrogateescape"))


async def load_hub_secret(blobs: BlobService, container: str) -> bytes:
    """The hub's secret (instance links, dashboard sessions), creating it when no process
    has yet (all then agree)."""
    for _attempt in range(3):
        try:
            return base64.b64decode(await blobs.download(container, SECRET_BLOB))
        except ResourceNotFound:
            pass
        secret = secrets.token_bytes(32)
        try:
            await blobs.upload(
                container, SECRET_BLOB, base64.b64encode(secret), "text/plain", overwrite=False
            )
        except (Conflict, PreconditionFailed):
            continue  # another process created it first: read theirs
        return secret
    raise RuntimeError("could not read or create the task hub's secret")
