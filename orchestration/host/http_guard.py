"""What the HTTP server refuses before a function sees a request: slow or idle connections,
bodies over a limit, and URLs or headers that are not valid UTF-8.

The Functions host runs on Kestrel, whose defaults we follow: a connection that sends
nothing is closed after the keep-alive timeout (130 s), a request head must arrive within
30 s of its first byte, and a body may pause at most 30 s between chunks. A body over the
limit is refused by its `Content-Length` before a byte of it is read, or, when it is sent in
chunks, as soon as the bytes read pass the limit; and all bodies buffered at once share a
budget, so a burst of large uploads cannot take the host's memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("orchestration.host.http")

BODY_LIMIT_SETTING = "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"  # Azure's own setting
BODY_BUDGET_SETTING = "ORCHESTRATION_HOST_BODY_BUDGET_BYTES"
KEEPALIVE_SETTING = "ORCHESTRATION_HOST_KEEPALIVE_SECONDS"
HEADER_TIMEOUT_SETTING = "ORCHESTRATION_HOST_HEADER_TIMEOUT_SECONDS"
BODY_TIMEOUT_SETTING = "ORCHESTRATION_HOST_BODY_TIMEOUT_SECONDS"
ROUTE_BODY_LIMIT_FIELD = "maxRequestBodySize"  # an httpTrigger field: this route's limit
MIB = 1024 * 1024


@dataclass(frozen=True)
class HttpLimits:
    """The server's limits; the defaults are the Functions host's (Kestrel's)."""

    max_body: int = 100 * MIB
    body_budget: int = 256 * MIB
    keepalive: float = 130.0
    header_timeout: float = 30.0
    body_timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> HttpLimits:
        def number(name: str, default: float) -> float:
            raw = settings.get(name)
            if raw is None or raw.strip() == "":
                return default
            value = float(raw)
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {raw!r}")
            return value

        defaults = cls()
        return cls(
            max_body=int(number(BODY_LIMIT_SETTING, defaults.max_body)),
            body_budget=int(number(BODY_BUDGET_SETTING, defaults.body_budget)),
            keepalive=number(KEEPALIVE_SETTING, defaults.keepalive),
            header_timeout=number(HEADER_TIMEOUT_SETTING, defaults.header_timeout),
            body_timeout=number(BODY_TIMEOUT_SETTING, defaults.body_timeout),
        )


class RequestRefused(Exception):
    """A request the server answers itself, with a JSON error body."""

    def __init__(self, status: int, title: str, detail: str, *, close: bool = False) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.close = close
        self.headers: dict[str, str] = {}

    def response(self) -> web.Response:
        body = json.dumps({"error": self.title, "detail": self.detail})
        response = web.Response(
            status=self.status, text=body, content_type="application/json", headers=self.headers
        )
        if self.close:
            response.force_close()
        return response


def strict_path(raw_path: str) -> str:
    """The raw path, checked: its %-escapes must decode as UTF-8 (else two paths, or two
    instance ids, would decode to the same U+FFFD text)."""
    try:
        unquote(raw_path, errors="strict")
    except UnicodeDecodeError:
        raise RequestRefused(
            400, "Invalid URL", "The URL path is not valid percent-encoded UTF-8."
        ) from None
    return raw_path


def strict_query(raw_query: str) -> list[tuple[str, str]]:
    """The query's name/value pairs, decoded strictly (400 when not valid UTF-8)."""
    try:
        return parse_qsl(raw_query, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise RequestRefused(
            400, "Invalid URL", "The URL query is not valid percent-encoded UTF-8."
        ) from None


def strict_headers(request: web.BaseRequest) -> dict[str, str]:
    """The request's headers, repeated ones joined; 400 when a value is not UTF-8 (the
    parser hands such bytes on as lone surrogates, which nothing downstream can encode)."""
    headers: dict[str, str] = {}
    for key, value in request.headers.items():
        if any("\udc80" <= char <= "\udcff" for char in value):
            raise RequestRefused(
                400, "Invalid header", f"The value of header {key!r} is not valid UTF-8."
            )
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


class BodyBudget:
    """Bytes of request bodies buffered at once, across all requests of this process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def reserve(self) -> BodyReservation:
        """A reservation for one request's body, empty until it is read."""
        return BodyReservation(self)

    def _take(self, amount: int) -> None:
        if self.in_use + amount > self.limit:
            refused = RequestRefused(
                503,
                "Server busy",
                "Too many large request bodies are being received at once; retry shortly.",
                close=True,
            )
            refused.headers["Retry-After"] = "1"
            raise refused
        self.in_use += amount


class BodyReservation:
    """What one request holds of the budget; `release()` once it is answered."""

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.amount = 0

    def take(self, amount: int) -> None:
        self.budget._take(amount)
        self.amount += amount

    def release(self) -> None:
        self.budget.in_use -= self.amount
        self.amount = 0


def _too_large(size: int | None, limit: int) -> RequestRefused:
    shown = f"{size} bytes" if size is not None else "more bytes"
    return RequestRefused(
        413,
        "Request body too large",
        f"The body is {shown}; the limit for this route is {limit} bytes.",
        close=True,
    )


async def read_body(
    request: web.BaseRequest, limit: int, reservation: BodyReservation, idle_timeout: float
) -> bytes:
    """The whole body, refused (413) past `limit` bytes without reading more than that.

    A declared `Content-Length` over the limit is refused before any of the body is read;
    a chunked body is read until it passes the limit. The bytes held count against the
    budget until the request is answered and the reservation released.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise _too_large(declared, limit)
    if declared is not None:
        reservation.take(declared)
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = await asyncio.wait_for(request.content.readany(), idle_timeout)
        except TimeoutError:
            raise RequestRefused(
                408,
                "Request timeout",
                f"The request body paused for more than {idle_timeout:g} s.",
                close=True,
            ) from None
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise _too_large(None, limit)
        if declared is None:
            reservation.take(len(chunk))
        chunks.append(chunk)
    return b"".join(chunks)


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection handler with Kestrel's connection timeouts.

    A connection that sends nothing is closed after `idle_timeout`; once the first byte of a
    request head arrives, the head must be complete within `header_timeout` (a slow-loris
    client trickling header bytes is closed). After a response, aiohttp's own keep-alive
    timeout closes an idle connection.
    """

    __slots__ = ("_deadline", "_handled", "_head_started", "_header_timeout", "_idle_timeout")

    def __init__(
        self, manager: Any, *, header_timeout: float, idle_timeout: float, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._idle_timeout = idle_timeout
        self._deadline: asyncio.TimerHandle | None = None
        self._handled = 0
        self._head_started = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm(self._idle_timeout)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        parsed = self._request_count
        super().data_received(data)
        if self._request_count > parsed:
            self._head_started = False
            self._disarm()
        elif not self._head_started and self._request_count == self._handled:
            # The first bytes of a new request's head.
            self._head_started = True
            self._arm(self._header_timeout)

    async def _handle_request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._handle_request(*args, **kwargs)
        finally:
            self._handled += 1

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self._loop.call_later(seconds, self._expire, self._request_count)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, count: int) -> None:
        self._deadline = None
        if self._request_count == count and self.transport is not None:
            log.debug("closing a connection whose request head did not arrive in time")
            self.force_close()


class GuardedServer(web.Server):
    """`web.Server` whose connections are `GuardedRequestHandler`s."""

    def __init__(self, handler: Any, limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(handler, keepalive_timeout=limits.keepalive, **kwargs)
        self._limits = limits

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(
            self,
            loop=self._loop,
            header_timeout=self._limits.header_timeout,
            idle_timeout=self._limits.keepalive,
            **self._kwargs,
        )
