"""Dashboard sessions: short-lived signed tokens a page obtains once with a key.

A browser cannot put a key in a header when it opens a page, and a key in a URL ends up in
logs. So the dashboard's page asks for the key once, sends it in `x-functions-key` to the
session route (which the host guards like the rest of the management API) and gets back a
token: an expiry time and a random id, signed with HMAC-SHA256 under the task hub's secret
(`storage.links`). The page keeps the token in the tab's sessionStorage and sends it in a
header on each call; the key itself is never stored. Deleting the hub's secret ends every
session within five minutes (processes read it again); rotating a key does not end the
sessions it opened, which is why they are short (`dashboard.sessionMinutes`, 60).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

SESSION_HEADER = "x-dashboard-session"
_PURPOSE = b"orchestration dashboard session v1\n"
MAX_TOKEN_CHARS = 512


@dataclass(frozen=True)
class Session:
    token: str
    expires_at: datetime


class SessionError(ValueError):
    """The token is missing, malformed, forged or expired (the message says which)."""


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class DashboardSessions:
    """Issues and checks session tokens under one secret."""

    def __init__(self, secret: bytes, lifetime: timedelta = timedelta(hours=1)) -> None:
        if len(secret) < 32:
            raise ValueError("a session secret must be at least 32 bytes")
        if lifetime <= timedelta(0):
            raise ValueError("a session lifetime must be positive")
        self._secret = secret
        self.lifetime = lifetime

    def _signature(self, payload: str) -> str:
        digest = hmac.new(self._secret, _PURPOSE + payload.encode("ascii"), hashlib.sha256)
        return _encode(digest.digest())

    def issue(self, now: datetime | None = None) -> Session:
        expires = (now or datetime.now(UTC)) + self.lifetime
        claims = {"exp": int(expires.timestamp()), "sid": secrets.token_hex(8)}
        payload = _encode(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
        return Session(f"{payload}.{self._signature(payload)}", expires.replace(microsecond=0))

    def check(self, token: str | None, now: datetime | None = None) -> datetime:
        """The token's expiry when it is valid; SessionError saying why not otherwise."""
        if not token:
            raise SessionError("no dashboard session: sign in with a key")
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise SessionError("the dashboard session token is malformed")
        payload, signature = token.split(".")
        expected = self._signature(payload) if payload.isascii() else ""
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8")):
            raise SessionError("the dashboard session token is not valid for this task hub")
        try:
            expiry = int(json.loads(_decode(payload))["exp"])
        except (ValueError, KeyError, TypeError) as failure:
            raise SessionError("the dashboard session token is malformed") from failure
        expires_at = datetime.fromtimestamp(expiry, UTC)
        if expires_at <= (now or datetime.now(UTC)):
            raise SessionError("the dashboard session has expired: sign in again")
        return expires_at
