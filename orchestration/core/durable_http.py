"""Durable HTTP: `context.call_http`'s request and response, and the task that polls.

As in Durable Functions, an HTTP call is a built-in activity (`BuiltIn::HttpActivity`) the
engine runs, so the orchestrator stays deterministic: its answer is recorded in history like
any activity result. An answer of 202 with a `Location` header starts DF's asynchronous
pattern: a durable timer (the `Retry-After` header's delay, else DF's default of 30 seconds),
then a GET of the location, again until the answer is not a 202 with a location.

Pure: the activity that sends the request lives in `orchestration.functions.http_activity`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from orchestration.core.errors import TaskFailedError
from orchestration.core.history import FailureDetails
from orchestration.core.tasks import ChainTask, TaskBase, TaskState, TimerTask

# DF's reserved name: it holds ':', which no registered function name may, so it never clashes.
HTTP_ACTIVITY = "BuiltIn::HttpActivity"
# DF's `httpSettings.defaultAsyncRequestSleepTimeMilliseconds`.
DEFAULT_POLLING_INTERVAL = timedelta(milliseconds=30_000)
REDACTED = "[redacted]"
# Request headers that carry credentials: kept out of history (see `recorded_input`).
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-functions-key", "cookie", "x-api-key"}
)
MANAGED_IDENTITY_KIND = "AzureManagedIdentity"

HeaderValue = str | list[str]


class TokenSource:
    """Where the HTTP activity gets an OAuth bearer token for a request (DF's base class)."""

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError


class ManagedIdentityTokenSource(TokenSource):
    """A token for `resource` from the app's Azure identity (azure-identity's credentials).

    The token is fetched by the HTTP activity at each send; it is never part of the request
    that history records.
    """

    def __init__(self, resource: str) -> None:
        if not isinstance(resource, str) or not resource:
            raise ValueError(
                "ManagedIdentityTokenSource needs the resource's URI, e.g. "
                "'https://management.core.windows.net/'."
            )
        self._resource = resource
        self._kind = MANAGED_IDENTITY_KIND

    @property
    def resource(self) -> str:
        """The Azure AD resource of the web API called, e.g. https://graph.microsoft.com/."""
        return self._resource

    @property
    def scope(self) -> str:
        """The OAuth scope azure-identity is asked for: the resource's `/.default`."""
        return self._resource + "/.default"

    def to_json(self) -> dict[str, Any]:
        return {"resource": self._resource, "kind": self._kind}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ManagedIdentityTokenSource) and other.resource == self.resource

    def __hash__(self) -> int:
        return hash(self._resource)

    def __repr__(self) -> str:
        return f"ManagedIdentityTokenSource({self._resource!r})"


def token_source_from_json(data: Any) -> TokenSource | None:
    """The token source a request's JSON names (None: none)."""
    if data is None:
        return None
    if isinstance(data, dict) and data.get("kind", MANAGED_IDENTITY_KIND) == MANAGED_IDENTITY_KIND:
        return ManagedIdentityTokenSource(str(data["resource"]))
    raise ValueError(f"unknown token source {data!r}: only ManagedIdentityTokenSource exists")


class DurableHttpRequest:
    """An HTTP request made by `context.call_http` (DF's class, same names)."""

    def __init__(
        self,
        method: str,
        uri: str,
        content: str | None = None,
        headers: Mapping[str, HeaderValue] | None = None,
        token_source: TokenSource | None = None,
    ) -> None:
        if not isinstance(method, str) or not method.strip():
            raise ValueError("call_http needs an HTTP method such as 'GET' or 'POST'.")
        if not isinstance(uri, str) or urlsplit(uri).scheme not in ("http", "https"):
            raise ValueError(f"call_http needs an absolute http(s) URI, not {uri!r}.")
        if token_source is not None and not isinstance(token_source, TokenSource):
            raise TypeError("token_source must be a TokenSource (ManagedIdentityTokenSource).")
        self._method = method.strip().upper()
        self._uri = uri
        self._content = content
        self._headers = dict(headers) if headers is not None else None
        self._token_source = token_source

    @property
    def method(self) -> str:
        return self._method

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def content(self) -> str | None:
        return self._content

    @property
    def headers(self) -> dict[str, HeaderValue] | None:
        return self._headers

    @property
    def token_source(self) -> TokenSource | None:
        return self._token_source

    def to_json(self) -> dict[str, Any]:
        """DF's JSON shape of the request (what the HTTP activity receives)."""
        source = self._token_source
        return {
            "method": self._method,
            "uri": self._uri,
            "content": self._content,
            "headers": self._headers,
            "tokenSource": source.to_json() if source is not None else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DurableHttpRequest:
        return cls(
            data["method"],
            data["uri"],
            data.get("content"),
            data.get("headers"),
            token_source_from_json(data.get("tokenSource")),
        )

    def poll(self, location: str) -> DurableHttpRequest:
        """The GET of a 202's `Location` (relative to this request's URI), as DF sends it:
        same headers and token source, no content, and no `x-functions-key` (the status
        endpoint of a Functions app wants its own key)."""
        headers = None
        if self._headers is not None:
            headers = {k: v for k, v in self._headers.items() if k.lower() != "x-functions-key"}
        return DurableHttpRequest(
            "GET", urljoin(self._uri, location), None, headers, self._token_source
        )

    def describe(self) -> str:
        return f"HTTP {self._method} {safe_uri(self._uri)}"

    def __repr__(self) -> str:
        return f"DurableHttpRequest({self._method!r}, {safe_uri(self._uri)!r})"


class DurableHttpResponse(dict[str, Any]):
    """The answer to `call_http`: `status_code`, `headers` and `content` (the body as text).

    A dict with DF's keys (`statusCode`, `headers`, `content`), because in azure-functions-
    durable the task's result is that dict: code written as `response["statusCode"]` keeps
    working, the attributes read the same values, and it encodes as DF's JSON.
    """

    def __init__(
        self,
        status_code: int,
        headers: Mapping[str, HeaderValue] | None = None,
        content: str | None = None,
    ) -> None:
        super().__init__(statusCode=int(status_code), headers=dict(headers or {}), content=content)

    @property
    def status_code(self) -> int:
        return int(self["statusCode"])

    @property
    def headers(self) -> dict[str, HeaderValue]:
        return dict(self["headers"])

    @property
    def content(self) -> str | None:
        value = self["content"]
        return None if value is None else str(value)

    def get_header(self, name: str) -> str | None:
        """A header's value by case-insensitive name (several values joined by ', ')."""
        wanted = name.lower()
        for key, value in self["headers"].items():
            if key.lower() == wanted:
                return ", ".join(value) if isinstance(value, list) else str(value)
        return None

    def json(self) -> Any:
        """The content decoded as JSON."""
        return json.loads(self["content"]) if self["content"] else None

    @classmethod
    def from_json(cls, data: Any) -> DurableHttpResponse:
        if isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, Mapping) or "statusCode" not in data:
            raise ValueError(f"not a DurableHttpResponse: {data!r}")
        return cls(data["statusCode"], data.get("headers"), data.get("content"))

    @staticmethod
    def to_json(response: DurableHttpResponse) -> str:
        return json.dumps(dict(response))

    def __repr__(self) -> str:
        return f"DurableHttpResponse(status_code={self.status_code}, content={self.content!r})"


def request_for_call(
    method: str,
    uri: str,
    content: Any = None,
    headers: Mapping[str, HeaderValue] | None = None,
    token_source: TokenSource | None = None,
    is_raw_str: bool = False,
) -> DurableHttpRequest:
    """The request `call_http` sends: content that is not a raw str is JSON-encoded (DF)."""
    if is_raw_str and not isinstance(content, str):
        raise TypeError(
            "call_http(is_raw_str=True) sends `content` as it is, so it must be a str; pass "
            "is_raw_str=False to send it JSON-encoded."
        )
    body: str | None = None
    if content is not None:
        body = content if is_raw_str else json.dumps(content)
    return DurableHttpRequest(method, uri, body, headers, token_source)


def encode_request(request: DurableHttpRequest) -> str:
    return json.dumps(request.to_json(), separators=(",", ":"))


def recorded_input(activity: str, encoded: str | None) -> str | None:
    """An activity's input as history records it: an HTTP request's credential headers are
    replaced by `[redacted]` (the activity's message still carries them: it needs them)."""
    if activity != HTTP_ACTIVITY or not encoded:
        return encoded
    try:
        data = json.loads(encoded)
    except ValueError:
        return encoded
    headers = data.get("headers") if isinstance(data, dict) else None
    if not isinstance(headers, dict) or not any(k.lower() in SECRET_HEADERS for k in headers):
        return encoded
    data["headers"] = {
        key: REDACTED if key.lower() in SECRET_HEADERS else value for key, value in headers.items()
    }
    return json.dumps(data, separators=(",", ":"))


def safe_uri(uri: str) -> str:
    """`uri` without user info, query and fragment: what logs and error messages show."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "(invalid URI)"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def poll_delay(response: DurableHttpResponse, now: datetime, default: timedelta) -> timedelta:
    """How long to wait before polling: `Retry-After` in seconds or as an HTTP date, else
    `default` (DF's default polling interval)."""
    value = response.get_header("Retry-After")
    if value is None:
        return default
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return default
    if when.tzinfo is None:
        return default
    return max(when - now, timedelta(0))


class DurableHttpTask(ChainTask):
    """`call_http`'s task: the HTTP activity, then, while the answer is a 202 with a
    `Location`, a durable timer and a GET of that location; succeeds with the last answer.

    A non-2xx answer is an answer (the task succeeds with it); a request that could not be
    sent or timed out fails the task with TaskFailedError, as in DF.
    """

    __slots__ = (
        "_create_timer",
        "_current",
        "_location",
        "_now",
        "_polling_interval",
        "_schedule",
    )

    def __init__(
        self,
        request: DurableHttpRequest,
        schedule: Callable[[str], TaskBase],
        create_timer: Callable[[datetime], TaskBase],
        now: Callable[[], datetime],
        polling_interval: timedelta = DEFAULT_POLLING_INTERVAL,
    ) -> None:
        super().__init__([])
        self._schedule = schedule
        self._create_timer = create_timer
        self._now = now
        self._polling_interval = polling_interval
        self._current = request
        self._location = ""
        self._send(request)

    @property
    def polls(self) -> int:
        """How many times the task has polled a location so far."""
        return sum(1 for child in self.children if isinstance(child, TimerTask))

    def _send(self, request: DurableHttpRequest) -> None:
        self._current = request
        self._watch(self._schedule(encode_request(request)))

    def _on_child_done(self, child: TaskBase) -> None:
        if isinstance(child, TimerTask):
            self._send(self._current.poll(self._location))
            return
        if child.state is TaskState.FAILED:
            self._fail(self._failure(child))
            return
        try:
            response = DurableHttpResponse.from_json(child._value)
        except (TypeError, ValueError) as error:
            self._fail(error)
            return
        location = response.get_header("Location")
        if response.status_code != 202 or not location:
            self._succeed(response)
            return
        self._location = location
        now = self._now()
        self._watch(self._create_timer(now + poll_delay(response, now, self._polling_interval)))

    def _failure(self, child: TaskBase) -> BaseException:
        error = child._exception
        if isinstance(error, TaskFailedError):
            failure = error.failure
            message = f"{self._current.describe()} failed: {failure.describe()}"
            return TaskFailedError(message, failure)
        failure = FailureDetails(type(error).__name__, str(error))
        return TaskFailedError(f"{self._current.describe()} failed: {error}", failure)
