"""Connection strings and the account object that owns the HTTP session.

`StorageAccount.from_connection_string(...)` accepts:

- ``UseDevelopmentStorage=true`` (devstoreaccount1 on 127.0.0.1:10000/10001/10002),
- ``AccountName=..;AccountKey=..`` with ``DefaultEndpointsProtocol`` and ``EndpointSuffix``
  (defaults ``https`` and ``core.windows.net``),
- explicit ``BlobEndpoint`` / ``QueueEndpoint`` / ``TableEndpoint`` (Azurite, custom domains).

SAS connection strings are refused: the transport signs every request with the account key.
One `aiohttp.ClientSession` is created lazily per account and closed by `await account.close()`
or by leaving ``async with account:``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp

from orchestration.azure.retry import RetryPolicy

DEV_ACCOUNT_NAME = "devstoreaccount1"
DEV_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
DEV_PORTS = (10000, 10001, 10002)  # blob, queue, table


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """What a connection string says: the account, its key and one endpoint per service.

    Endpoints carry no trailing slash; for path-style (emulator) endpoints they end with the
    account name, e.g. ``http://127.0.0.1:10002/devstoreaccount1``.
    """

    account_name: str
    account_key: bytes = field(repr=False)
    blob_endpoint: str
    queue_endpoint: str
    table_endpoint: str


def dev_connection_string(
    host: str = "127.0.0.1",
    blob_port: int = DEV_PORTS[0],
    queue_port: int = DEV_PORTS[1],
    table_port: int = DEV_PORTS[2],
) -> str:
    """The connection string of the emulator's well-known account on these ports."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};"
        f"AccountKey={DEV_ACCOUNT_KEY};"
        f"BlobEndpoint=http://{host}:{blob_port}/{DEV_ACCOUNT_NAME};"
        f"QueueEndpoint=http://{host}:{queue_port}/{DEV_ACCOUNT_NAME};"
        f"TableEndpoint=http://{host}:{table_port}/{DEV_ACCOUNT_NAME};"
    )


def split_connection_string(conn_str: str) -> dict[str, str]:
    """`Key=Value;...` as a dict (keys as written), `UseDevelopmentStorage=true` expanded to
    the emulator's explicit string; ValueError saying what is malformed."""
    if not isinstance(conn_str, str) or not conn_str.strip():
        raise ValueError("connection string is empty")
    parts: dict[str, str] = {}
    seen: set[str] = set()
    for raw in conn_str.split(";"):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(
                f"malformed connection string segment {item.split('=')[0]!r}: expected Key=Value"
            )
        if key.lower() in seen:
            raise ValueError(f"connection string names {key!r} twice")
        seen.add(key.lower())
        parts[key] = value.strip()
    lowered = {k.lower(): v for k, v in parts.items()}
    if "usedevelopmentstorage" in lowered:
        if lowered["usedevelopmentstorage"].lower() != "true":
            raise ValueError("UseDevelopmentStorage must be 'true' when present")
        if "developmentstorageproxyuri" in lowered:
            raise ValueError("DevelopmentStorageProxyUri is not supported")
        return split_connection_string(dev_connection_string())
    return parts


def _split(conn_str: str) -> dict[str, str]:
    return {k.lower(): v for k, v in split_connection_string(conn_str).items()}


def _endpoint(value: str, what: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{what} must be an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def _decode_key(value: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("AccountKey is not valid base64") from None
    if not key:
        raise ValueError("AccountKey is empty")
    return key


def parse_connection_string(conn_str: str) -> ConnectionSettings:
    """Parse an Azure Storage connection string; raise ValueError saying what is wrong."""
    parts = _split(conn_str)
    name = parts.get("accountname", "")
    if not name:
        if "sharedaccesssignature" in parts:
            raise ValueError(
                "SAS connection strings are not supported: give AccountName and AccountKey"
            )
        raise ValueError("connection string has no AccountName")
    if "accountkey" not in parts:
        raise ValueError("connection string has no AccountKey (SAS-only strings are unsupported)")
    key = _decode_key(parts["accountkey"])
    protocol = parts.get("defaultendpointsprotocol", "https").lower()
    if protocol not in ("http", "https"):
        raise ValueError(f"DefaultEndpointsProtocol must be http or https, got {protocol!r}")
    suffix = parts.get("endpointsuffix", "core.windows.net").strip(".")
    if not suffix:
        raise ValueError("EndpointSuffix is empty")
    endpoints: dict[str, str] = {}
    for service in ("blob", "queue", "table"):
        explicit = parts.get(f"{service}endpoint")
        if explicit:
            endpoints[service] = _endpoint(explicit, f"{service.capitalize()}Endpoint")
        else:
            endpoints[service] = f"{protocol}://{name}.{service}.{suffix}"
    return ConnectionSettings(
        account_name=name,
        account_key=key,
        blob_endpoint=endpoints["blob"],
        queue_endpoint=endpoints["queue"],
        table_endpoint=endpoints["table"],
    )


class StorageAccount:
    """One storage account: its settings, one pooled aiohttp session and per-operation stats.

    ``stats`` maps an operation name (``"table.insert"``, ``"queue.send"``, ...) to the number
    of logical calls made; ``"retry"`` counts extra attempts made by the retry policy. Services
    (`TableService`, `QueueService`, `BlobService`) share the account's session and stats.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        connection_limit: int = 100,
    ) -> None:
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.stats: dict[str, int] = {}
        self.totals: dict[str, int] = {}  # like `stats`, never reset (for metrics)
        self._timeout = timeout
        self._limit = connection_limit
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_connection_string(cls, conn_str: str, **kwargs: Any) -> StorageAccount:
        return cls(parse_connection_string(conn_str), **kwargs)

    @property
    def name(self) -> str:
        return self.settings.account_name

    @property
    def key(self) -> bytes:
        return self.settings.account_key

    def session(self) -> aiohttp.ClientSession:
        """The shared session, created on first use (inside a running event loop).

        A session belongs to the loop that created it: used from another event loop (an
        app that calls ``asyncio.run`` per invocation), the account starts a new session
        for that loop rather than failing.
        """
        session = self._session
        loop = asyncio.get_running_loop()
        if session is None or session.closed or self._loop is not loop:
            self._loop = loop
            session = aiohttp.ClientSession(
                # Idle connections are dropped after 4 s, before Node's (Azurite's) 5 s server
                # keep-alive timeout closes them under us: a request written to a connection
                # the server already closed fails with no response, which for non-idempotent
                # requests we must report as OutcomeUnknown rather than retry.
                connector=aiohttp.TCPConnector(limit=self._limit, keepalive_timeout=4.0),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                # Never let aiohttp add a Content-Type we did not sign; no User-Agent noise.
                skip_auto_headers=("Content-Type", "User-Agent"),
                auto_decompress=False,
            )
            # aiohttp re-sends a PUT or DELETE by itself once when a reused connection
            # drops; a conditional PUT/DELETE (If-Match) must not be re-sent blindly, so
            # all retrying is left to our own policy (retry.py).
            if hasattr(session, "_retry_connection"):
                session._retry_connection = False
            self._session = session
        return session

    def count(self, operation: str) -> None:
        self.stats[operation] = self.stats.get(operation, 0) + 1
        self.totals[operation] = self.totals.get(operation, 0) + 1

    def reset_stats(self) -> dict[str, int]:
        """Return the stats so far and start counting from zero."""
        stats, self.stats = self.stats, {}
        return stats

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def __aenter__(self) -> StorageAccount:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"StorageAccount({self.settings.account_name!r})"
