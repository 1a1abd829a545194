"""Errors raised by the transport, with the service's own error code.

`raise_for_response` maps a failed HTTP response to one exception type per status family;
``code`` is the service's error code (``x-ms-error-code`` header, else JSON
``odata.error.code`` for tables, else XML ``<Code>`` for queues and blobs).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping


class StorageError(Exception):
    """A request failed. ``status`` is the HTTP status (0 when no response was received)."""

    def __init__(self, status: int, code: str | None, message: str, operation: str = "") -> None:
        self.status = status
        self.code = code
        self.message = message
        self.operation = operation
        where = f"{operation}: " if operation else ""
        super().__init__(f"{where}{status} {code or ''}: {message}".rstrip(": "))


class ResourceNotFound(StorageError):
    """404: table, entity, queue, message (pop receipt gone), container or blob absent."""


class Conflict(StorageError):
    """409: the resource exists, is being deleted, or the request conflicts with its state."""


ResourceExists = Conflict


class PreconditionFailed(StorageError):
    """412: the ETag (If-Match / If-None-Match) condition did not hold."""


class RequestTooLarge(StorageError):
    """The body is over a service limit: 413 RequestBodyTooLarge (queue message over 64 KiB,
    blob), or tables' 400 PropertyValueTooLarge (a string over 32,768 chars / binary over
    64 KiB) and 400 EntityTooLarge (entity over 1 MiB)."""


class ServerBusy(StorageError):
    """500 / 503: the service failed or throttled; retried for idempotent requests."""


class OutcomeUnknown(StorageError):
    """A non-idempotent request was sent but no response came back (timeout, dropped
    connection). It may or may not have been applied: the caller must read back to learn
    which. The transport never retries such a request by itself."""


class BatchError(StorageError):
    """An entity group transaction failed and committed nothing.

    ``index`` is the 0-based position of the failing operation in the list given to
    `TableService.submit_transaction` (None when the service did not say which).
    """

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        index: int | None,
        operation: str = "table.transaction",
    ) -> None:
        self.index = index
        super().__init__(status, code, message, operation)
        self.args = (f"operation {index}: {self.args[0]}",)


_TOO_LARGE_CODES = frozenset({"PropertyValueTooLarge", "EntityTooLarge", "RequestBodyTooLarge"})


def error_class(status: int, code: str | None = None) -> type[StorageError]:
    if code in _TOO_LARGE_CODES:
        return RequestTooLarge
    if status == 404:
        return ResourceNotFound
    if status == 409:
        return Conflict
    if status == 412:
        return PreconditionFailed
    if status == 413:
        return RequestTooLarge
    if status in (500, 503):
        return ServerBusy
    return StorageError


def parse_error_body(body: bytes) -> tuple[str | None, str]:
    """(code, message) from a JSON (tables) or XML (queues, blobs) error body."""
    text = body.strip()
    if not text:
        return None, ""
    if text[:1] == b"{":
        try:
            doc = json.loads(text)
        except ValueError:
            return None, text[:500].decode("utf-8", "replace")
        err = doc.get("odata.error") or doc.get("error") or {}
        if isinstance(err, dict):
            msg = err.get("message")
            if isinstance(msg, dict):
                msg = msg.get("value")
            return err.get("code"), str(msg or "")
        return None, str(doc)[:500]
    if text[:1] == b"<":
        try:
            root = ET.fromstring(text)
        except ET.ParseError:
            return None, text[:500].decode("utf-8", "replace")
        code = root.findtext("Code") or root.findtext("code")
        message = root.findtext("Message") or root.findtext("message") or ""
        return code, message.strip()
    return None, text[:500].decode("utf-8", "replace")


def make_error(
    status: int, headers: Mapping[str, str], body: bytes, operation: str
) -> StorageError:
    code, message = parse_error_body(body)
    code = headers.get("x-ms-error-code") or code
    return error_class(status, code)(status, code, message or f"HTTP {status}", operation)
