"""What every management endpoint shares: JSON answers, the error mapping, the client, the key.

Every error answers with a JSON body `{"error": ..., "detail": ...}`. A handler raises
`BadRequest` (from `validation`) for bad input; `guarded` turns that, invalid names and the
storage service's refusals into 4xx answers, and storage outages into 503. Anything else is
a bug: it propagates, and the host answers 500 and logs the traceback.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import azure.functions as func

from orchestration.azure.errors import RequestTooLarge, StorageError
from orchestration.client import DurableOrchestrationClient
from orchestration.functions.management.validation import BadRequest, decode_token, encode_token
from orchestration.storage.hub import ConcurrencyError
from orchestration.storage.names import InvalidNameError

if TYPE_CHECKING:
    from orchestration.functions.engine import Engine

log = logging.getLogger("orchestration.management")

JSON = "application/json"

Handler = Callable[["Engine", func.HttpRequest], Awaitable[func.HttpResponse]]
# A route value the link routes add, so that handlers know the request came through a link.
LINKED = "~linked"


def base_url(engine: Engine, request: func.HttpRequest | None) -> str | None:
    """`scheme://host/{routePrefix}` of the request (None without a request)."""
    if request is None:
        return None
    parts = urlsplit(request.url)
    prefix = engine.settings.route_prefix
    return f"{parts.scheme}://{parts.netloc}/{prefix}".rstrip("/")


def error(status: int, title: str, detail: str = "", **extra: Any) -> func.HttpResponse:
    """An error answer: `{"error": title, "detail": detail}` and any `extra` fields."""
    body = {"error": title, "detail": detail, **extra}
    return func.HttpResponse(json.dumps(body, allow_nan=False), status_code=status, mimetype=JSON)


def answer(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    # Stored values are strict JSON (core.serialization): never emit NaN or Infinity.
    return func.HttpResponse(
        json.dumps(body, allow_nan=False), status_code=status, mimetype=JSON, headers=headers or {}
    )


CONTINUATION = "x-ms-continuation-token"


def page_token(request: func.HttpRequest) -> tuple[str, str | None] | None:
    """The continuation token a paged request sent back (400 when it is not ours)."""
    return decode_token(request.headers.get(CONTINUATION))


def page_answer(items: list[Any], next_token: Any) -> func.HttpResponse:
    """A page of a listing; the next page's token in the header, when there is one."""
    encoded = encode_token(next_token)
    return answer(items, 200, {CONTINUATION: encoded} if encoded is not None else None)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def check_task_hub(engine: Engine, request: func.HttpRequest) -> None:
    """Refuse DF's `taskHub` / `connection` query parameters when they name another task hub
    or storage account than the app's (Durable Functions would open that one; we serve one)."""
    settings = engine.settings
    hub = (request.params.get("taskHub") or "").strip()
    if hub and hub.lower() != settings.hub_name.lower():
        raise BadRequest(
            "Unknown task hub",
            f"This app serves task hub {settings.hub_name!r} only; taskHub={hub!r} is another.",
        )
    connection = (request.params.get("connection") or "").strip()
    if not connection:
        return
    # A connection name X means app setting X or AzureWebJobsX (DF's URLs carry "Storage").
    own = settings.connection_name.lower()
    if connection.lower() not in (own, own.removeprefix("azurewebjobs")):
        raise BadRequest(
            "Unknown connection",
            f"This app's task hub lives in the account of app setting "
            f"{settings.connection_name!r}; connection={connection!r} names another.",
        )


async def client_for(engine: Engine, request: func.HttpRequest) -> DurableOrchestrationClient:
    """The durable client for a request; its URLs carry the request's key, or link codes
    when it carried none or came in through a link."""
    check_task_hub(engine, request)
    return await engine.client(
        base_url(engine, request), keyless=bool(request.route_params.get(LINKED))
    )


def query_values(request: func.HttpRequest, name: str) -> list[str]:
    """Every value of a repeated query parameter (`HttpRequest.params` keeps only one)."""
    try:
        values = parse_qs(urlsplit(request.url).query, keep_blank_values=True).get(name)
    except ValueError:
        values = None
    if values:
        return values
    single = request.params.get(name)
    return [single] if single is not None else []


def add_route(
    app: Any,
    name: str,
    route: str,
    methods: list[str],
    level: func.AuthLevel,
    endpoint: Callable[[func.HttpRequest], Awaitable[func.HttpResponse]],
    fields: dict[str, Any],
) -> None:
    """Register `endpoint` as the HTTP function `name` of `app` (`fields`: extra trigger
    fields the host reads, such as maxRequestBodySize)."""
    endpoint.__name__ = name
    endpoint.__qualname__ = name
    app.function_name(name)(
        app.route(route=route, methods=methods, auth_level=level, trigger_extra_fields=fields)(
            endpoint
        )
    )


def rerouted(
    request: func.HttpRequest,
    route_params: dict[str, str],
    *,
    url: str | None = None,
    headers: dict[str, str] | None = None,
) -> func.HttpRequest:
    """The same request with other route values (and URL or headers), for a handler reached
    through another door (an instance link, the dashboard's session)."""
    return func.HttpRequest(
        method=request.method,
        url=url if url is not None else request.url,
        headers=headers if headers is not None else dict(request.headers),
        params=dict(request.params),
        route_params=route_params,
        body=request.get_body(),
    )


def route_value(request: func.HttpRequest, name: str) -> str:
    return request.route_params.get(name) or ""


@dataclass(frozen=True)
class Failure:
    """An expected failure as an answer: status, title, detail and Dapr's error code."""

    status: int
    title: str
    detail: str
    code: str = "ERR_BAD_REQUEST"


def classify(failure: Exception) -> Failure | None:
    """The answer to an expected failure; None for a bug (let it become a 500)."""
    if isinstance(failure, BadRequest):
        code = "ERR_REQUEST_TOO_LARGE" if failure.status == 413 else "ERR_BAD_REQUEST"
        return Failure(failure.status, failure.error, failure.detail, code)
    if isinstance(failure, InvalidNameError):
        return Failure(400, "Invalid request", str(failure))
    if isinstance(failure, RecursionError):
        return Failure(400, "Invalid request", "The JSON value is nested too deeply.")
    if isinstance(failure, ConcurrencyError):
        detail = "The instance took a step during the request; retry."
        return Failure(409, "Instance changed meanwhile", detail, "ERR_CONFLICT")
    if isinstance(failure, RequestTooLarge):
        return Failure(413, "Payload too large", failure.message, "ERR_REQUEST_TOO_LARGE")
    if isinstance(failure, StorageError):
        if 400 <= failure.status < 500 and failure.status not in (401, 403, 408, 429):
            detail = f"Storage refused a value of this request ({failure.status} {failure.code})."
            return Failure(400, "Invalid request", detail)
        log.warning("storage unavailable: %s", failure)
        return Failure(503, "Storage unavailable", str(failure), "ERR_STORAGE_UNAVAILABLE")
    return None


def guarded(
    handler: Handler, render: Callable[[Failure], func.HttpResponse] | None = None
) -> Handler:
    """Answer expected failures with 4xx/503 and a JSON body (`render` shapes it)."""

    def default(failure: Failure) -> func.HttpResponse:
        return error(failure.status, failure.title, failure.detail)

    shape = render or default

    @functools.wraps(handler)
    async def run(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
        try:
            return await handler(engine, request)
        except (BadRequest, InvalidNameError, RecursionError, ConcurrencyError, StorageError) as e:
            answer = classify(e)
            if answer is None:
                raise
            return shape(answer)

    return run
