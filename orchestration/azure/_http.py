"""The one place requests are sent: signing per attempt, retries, error mapping, stats."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from orchestration.azure.connection import StorageAccount
from orchestration.azure.errors import OutcomeUnknown, StorageError, make_error
from orchestration.azure.signing import rfc1123_now, sign_shared_key

Signer = Callable[[MutableMapping[str, str]], str]


@dataclass(slots=True)
class Response:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


async def execute(
    account: StorageAccount,
    operation: str,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    sign: Signer,
    *,
    idempotent: bool,
) -> Response:
    """Send one logical request (with retries); return the response or raise StorageError.

    ``url`` is fully percent-encoded already (it is signed as is). ``sign`` gets the headers,
    x-ms-date included, and returns the Authorization value; it runs again on every attempt.
    """
    account.count(operation)
    policy = account.retry
    session = account.session()
    target = URL(url, encoded=True)
    attempt = 0
    while True:
        attempt += 1
        headers["x-ms-date"] = rfc1123_now()
        headers["Authorization"] = sign(headers)
        try:
            async with session.request(method, target, headers=headers, data=body) as resp:
                data = await resp.read()
                status = resp.status
                resp_headers = resp.headers
        except aiohttp.ClientConnectorError as exc:
            # The connection was never established: nothing reached the service.
            if attempt < policy.max_attempts:
                account.count("retry")
                await asyncio.sleep(policy.delay(attempt))
                continue
            raise StorageError(0, "ConnectionError", str(exc), operation) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            if idempotent and attempt < policy.max_attempts:
                account.count("retry")
                await asyncio.sleep(policy.delay(attempt))
                continue
            kind = type(exc).__name__
            if idempotent:
                raise StorageError(0, kind, str(exc) or kind, operation) from exc
            raise OutcomeUnknown(
                0,
                kind,
                f"no response ({exc or kind}); the request may or may not have been applied",
                operation,
            ) from exc
        if status < 300:
            return Response(status, resp_headers, data)
        if policy.retry_status(status, idempotent) and attempt < policy.max_attempts:
            account.count("retry")
            await asyncio.sleep(policy.delay(attempt))
            continue
        raise make_error(status, resp_headers, data, operation)


class SharedKeyClient:
    """Request plumbing shared by the Blob and Queue services (Shared Key signing)."""

    def __init__(self, account: StorageAccount, endpoint: str, api_version: str) -> None:
        self.account = account
        self._endpoint = endpoint
        self._prefix = urlsplit(endpoint).path.rstrip("/")
        self._name = account.settings.account_name
        self._key = account.settings.account_key
        self._version = api_version

    async def call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool,
    ) -> Response:
        """``path`` is percent-encoded and relative to the endpoint; ``query`` values are
        plain (they are encoded here and signed decoded, as the docs require)."""
        hdrs = {"x-ms-version": self._version}
        if headers:
            hdrs.update(headers)
        if body is not None:
            hdrs["Content-Length"] = str(len(body))
        url = self._endpoint + path
        if query:
            url += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query)
        full_path = self._prefix + path
        name, key = self._name, self._key

        def sign(h: Mapping[str, str]) -> str:
            return sign_shared_key(name, key, method, full_path, query, h)

        return await execute(
            self.account, operation, method, url, hdrs, body, sign, idempotent=idempotent
        )
