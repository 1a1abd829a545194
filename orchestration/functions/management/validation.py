"""Checks on everything the management API takes from a request, before it reaches storage.

Each parser turns one raw value (a query parameter, a header, a body) into a typed value, or
raises `BadRequest` naming the parameter and what is allowed. OData filters are assembled
only from these typed values (`instance_filter`), with string literals through
`odata_string`, so no request text reaches a filter unchecked (DESIGN rule 7).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestration.core import serialization
from orchestration.core.serialization import InvalidPayloadError
from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.instance_query import instance_filter
from orchestration.storage.names import (
    MAX_INSTANCE_ID_LENGTH,
    InvalidNameError,
    validate_event_name,
    validate_function_name,
    validate_instance_id,
)

MAX_TOP = 1000
MAX_TOKEN_CHARS = 2048
MAX_REASON_CHARS = 4096
# Azure Table storage keeps DateTime values between these bounds.
TABLE_MIN_TIME = datetime(1601, 1, 1, tzinfo=UTC)
TABLE_MAX_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_STATUSES = {status.value.lower(): status for status in OrchestrationRuntimeStatus}
_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


class BadRequest(ValueError):
    """A request value that cannot be used: answered 400 (or `status`) with a JSON body."""

    def __init__(self, error: str, detail: str = "", status: int = 400) -> None:
        super().__init__(f"{error}: {detail}" if detail else error)
        self.error = error
        self.detail = detail
        self.status = status


def parse_bool(params: Mapping[str, str], name: str, default: bool) -> bool:
    """A true/false query parameter (also 1/0, any case); `default` when absent or empty."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadRequest("Invalid query parameter", f"{name} must be true or false, got {raw!r}.")


def parse_datetime(params: Mapping[str, str], name: str) -> datetime | None:
    """An ISO 8601 time (naive values are UTC), clamped to the range Table storage keeps."""
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        return None
    text = raw.strip()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(
            "Invalid query parameter",
            f"{name} must be an ISO 8601 date or time such as 2024-05-01T12:00:00Z, got {raw!r}.",
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        return TABLE_MIN_TIME if value.year < 2000 else TABLE_MAX_TIME
    return min(max(value, TABLE_MIN_TIME), TABLE_MAX_TIME)


def parse_top(params: Mapping[str, str], name: str = "top") -> int | None:
    """A page size between 1 and 1,000; None when absent."""
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        return None
    text = raw.strip()
    if not re.fullmatch(r"\+?[0-9]{1,9}", text) or not 1 <= int(text) <= MAX_TOP:
        raise BadRequest(
            "Invalid query parameter",
            f"{name} must be a whole number from 1 to {MAX_TOP}, got {raw!r}.",
        )
    value = int(text)
    return value


def parse_statuses(
    values: Iterable[str], name: str = "runtimeStatus"
) -> list[OrchestrationRuntimeStatus]:
    """Runtime statuses, comma-separated and/or repeated, any case; [] when none are given."""
    statuses: list[OrchestrationRuntimeStatus] = []
    for raw in values:
        for part in raw.split(","):
            word = part.strip()
            if not word:
                continue
            status = _STATUSES.get(word.lower())
            if status is None:
                known = ", ".join(s.value for s in OrchestrationRuntimeStatus)
                raise BadRequest(
                    "Invalid query parameter",
                    f"{name} {word!r} is not a runtime status; use one or more of {known}.",
                )
            if status not in statuses:
                statuses.append(status)
    return statuses


def parse_instance_id(value: object, what: str = "Instance id") -> str:
    try:
        return validate_instance_id(value)
    except InvalidNameError as failure:
        raise BadRequest(f"Invalid {what.lower()}", str(failure)) from None


def parse_event_name(value: object) -> str:
    try:
        return validate_event_name(value)
    except InvalidNameError as failure:
        raise BadRequest("Invalid event name", str(failure)) from None


def parse_function_name(value: object, what: str = "Orchestrator name") -> str:
    try:
        return validate_function_name(value, what)
    except InvalidNameError as failure:
        raise BadRequest(f"Invalid {what.lower()}", str(failure)) from None


def parse_prefix(params: Mapping[str, str], name: str = "instanceIdPrefix") -> str | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_INSTANCE_ID_LENGTH or _CONTROL.search(raw):
        raise BadRequest(
            "Invalid query parameter",
            f"{name} must be at most {MAX_INSTANCE_ID_LENGTH} characters, with no control "
            f"characters.",
        )
    return raw


def parse_name_filter(params: Mapping[str, str], name: str = "name") -> str | None:
    """The orchestrator-name filter of a listing (exact, as registered)."""
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        return None
    return parse_function_name(raw.strip())


def parse_reason(params: Mapping[str, str], name: str = "reason") -> str | None:
    raw = params.get(name)
    if raw is None:
        return None
    if len(raw) > MAX_REASON_CHARS:
        raise BadRequest(
            "Invalid query parameter", f"{name} must be at most {MAX_REASON_CHARS} characters."
        )
    return raw


def parse_json_body(body: bytes | None, limit: int) -> Any:
    """The request body as JSON (None when empty); 413 over `limit` bytes, 400 when malformed."""
    raw = body or b""
    if len(raw) > limit:
        raise BadRequest(
            "Request body too large", f"The body is {len(raw)} bytes; the limit is {limit}.", 413
        )
    if not raw.strip():
        return None
    try:
        return serialization.loads(raw.decode("utf-8"))
    except InvalidPayloadError as failure:
        raise BadRequest(
            "Invalid JSON value", f"The request body is not strict JSON: {failure}"
        ) from None
    except ValueError as failure:  # JSONDecodeError, UnicodeDecodeError
        raise BadRequest(
            "Malformed JSON", f"The request body is not valid UTF-8 JSON: {failure}"
        ) from None


@dataclass(frozen=True)
class InstanceQuery:
    """A validated query over instances."""

    created_from: datetime | None = None
    created_to: datetime | None = None
    statuses: tuple[OrchestrationRuntimeStatus, ...] = ()
    prefix: str | None = None
    name: str | None = None  # the orchestrator's

    def filter(self) -> str | None:
        return instance_filter(
            self.created_from,
            self.created_to,
            list(self.statuses) or None,
            self.prefix,
            name=self.name,
        )

    @classmethod
    def from_params(
        cls, params: Mapping[str, str], statuses: Iterable[str] | None = None
    ) -> InstanceQuery:
        raw_statuses = list(statuses) if statuses is not None else []
        if statuses is None and params.get("runtimeStatus"):
            raw_statuses = [params["runtimeStatus"]]
        query = cls(
            created_from=parse_datetime(params, "createdTimeFrom"),
            created_to=parse_datetime(params, "createdTimeTo"),
            statuses=tuple(parse_statuses(raw_statuses)),
            prefix=parse_prefix(params),
            name=parse_name_filter(params),
        )
        return query


def encode_token(token: Any) -> str | None:
    """The storage continuation token as an opaque header value."""
    if token is None:
        return None
    text = json.dumps(list(token), separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_token(value: str | None) -> tuple[str, str | None] | None:
    """A continuation token from the `x-ms-continuation-token` header; 400 when not ours."""
    if value is None or value.strip() in ("", "null"):
        return None
    text = value.strip()
    invalid = BadRequest(
        "Invalid continuation token",
        "x-ms-continuation-token must be a value from a previous answer's header.",
    )
    if len(text) > MAX_TOKEN_CHARS:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        decoded = serialization.loads(raw.decode("utf-8"))
    except (ValueError, binascii.Error):
        raise invalid from None
    if (
        not isinstance(decoded, list)
        or len(decoded) != 2
        or not isinstance(decoded[0], str)
        or not (decoded[1] is None or isinstance(decoded[1], str))
        or any(isinstance(p, str) and (not p or _CONTROL.search(p)) for p in decoded)
    ):
        raise invalid
    return decoded[0], decoded[1]
