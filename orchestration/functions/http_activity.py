"""The built-in HTTP activity behind `context.call_http`: sends one request with aiohttp.

It runs as an activity (on the event loop, like an async activity): history records its
answer, so the orchestrator that polls a 202 replays deterministically. As DF's extension
does, it sends `content` as text (Content-Type `text/plain` unless the request's headers set
one; multipart is refused), follows redirects, and gives up after 240 seconds. Every answer,
whatever its status, is a result; a request that cannot be sent or times out raises, which
fails the task with TaskFailedError.
"""

from __future__ import annotations

import importlib
from typing import Any

import aiohttp
from multidict import CIMultiDict

from orchestration.core import serialization
from orchestration.core.durable_http import (
    HTTP_ACTIVITY,
    DurableHttpRequest,
    DurableHttpResponse,
    HeaderValue,
    ManagedIdentityTokenSource,
    TokenSource,
)
from orchestration.functions.registry import ActivityDefinition

# DF's durable HTTP client: HttpClient.Timeout of 240 s and .NET's default of 50 redirects.
REQUEST_TIMEOUT_SECONDS = 240.0
MAX_REDIRECTS = 50


class DurableHttpError(Exception):
    """A durable HTTP request that could not be sent, or got no answer in time."""


class TokenSourceUnavailableError(DurableHttpError):
    """A token source whose package (azure-identity) is not installed."""


async def acquire_token(source: TokenSource) -> str:
    """A bearer token from `source`, fetched now (never stored, never logged)."""
    if not isinstance(source, ManagedIdentityTokenSource):
        raise DurableHttpError(f"unsupported token source {type(source).__name__}")
    try:
        identity = importlib.import_module("azure.identity.aio")
    except ImportError:
        raise TokenSourceUnavailableError(
            "ManagedIdentityTokenSource needs the 'azure-identity' package, which is not "
            "installed: add azure-identity to the app's requirements.txt (pip install "
            "azure-identity)."
        ) from None
    credential = identity.DefaultAzureCredential()
    try:
        token = await credential.get_token(source.scope)
    finally:
        await credential.close()
    return str(token.token)


def _headers_of(response: aiohttp.ClientResponse) -> dict[str, HeaderValue]:
    """DF's shape: one value as a str, a repeated header (Set-Cookie) as a list."""
    headers: dict[str, HeaderValue] = {}
    for key in response.headers:
        if key in headers:
            continue
        values = response.headers.getall(key)
        headers[key] = values[0] if len(values) == 1 else list(values)
    return headers


def _outgoing_headers(request: DurableHttpRequest) -> tuple[CIMultiDict[str], str | None]:
    headers: CIMultiDict[str] = CIMultiDict()
    content_type: str | None = None
    for key, value in (request.headers or {}).items():
        values = value if isinstance(value, list) else [value]
        if key.lower() == "content-type":
            if any("multipart" in v.lower() for v in values):
                raise DurableHttpError("Multipart content is not supported with call_http.")
            content_type = values[-1]
            continue
        for item in values:
            headers.add(key, str(item))
    return headers, content_type


async def send(request: DurableHttpRequest) -> DurableHttpResponse:
    """Send `request` once; its answer (any status) or DurableHttpError."""
    headers, content_type = _outgoing_headers(request)
    data: bytes | None = None
    if request.content is not None:
        headers["Content-Type"] = content_type or "text/plain; charset=utf-8"
        data = request.content.encode()
    if request.token_source is not None:
        headers["Authorization"] = f"Bearer {await acquire_token(request.token_source)}"
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    where = request.describe()
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(
                request.method,
                request.uri,
                headers=headers,
                data=data,
                max_redirects=MAX_REDIRECTS,
            ) as answer,
        ):
            body = await answer.read()
            text = body.decode(answer.get_encoding(), errors="replace") if body else ""
            return DurableHttpResponse(answer.status, _headers_of(answer), text)
    except TimeoutError:
        raise DurableHttpError(
            f"{where} got no answer in {REQUEST_TIMEOUT_SECONDS:g} seconds"
        ) from None
    except aiohttp.TooManyRedirects:
        raise DurableHttpError(f"{where} was redirected more than {MAX_REDIRECTS} times") from None
    except (aiohttp.ClientError, OSError, ValueError) as error:
        # The exception's own text may quote the full URI (query, user info): not kept.
        reason = type(error).__name__
        if isinstance(error, aiohttp.ClientConnectorError):
            reason += f": cannot connect ({error.os_error.strerror or error.os_error})"
        raise DurableHttpError(f"{where} could not be sent: {reason}") from None


async def run(request: Any) -> dict[str, Any]:
    """The activity function: the request's JSON in, the response's JSON out."""
    if isinstance(request, str):
        request = serialization.loads(request)
    response = await send(DurableHttpRequest.from_json(request))
    return dict(response)


# How the activity worker runs it: an async activity whose input is the request's JSON.
DEFINITION = ActivityDefinition(HTTP_ACTIVITY, run, "request", is_async=True)
# The engine's own activities, by name; no registered name can take one (they hold ':').
BUILT_IN = {HTTP_ACTIVITY: DEFINITION}
