"""Azure Queue storage over plain aiohttp.

Message text is sent as given: the caller chooses whether to base64 it (the Functions host's
queue trigger expects base64 by default). It is XML-escaped here (``& < >`` and ``\\r``, which
an XML parser would otherwise turn into ``\\n``); characters XML 1.0 cannot carry (most
control characters, lone surrogates) are refused with ValueError -- base64 such payloads.
Limits: 64 KiB per message (as sent, after any base64), visibility timeouts up to 7 days,
at most 32 messages per receive or peek.
"""

from __future__ import annotations

import builtins
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from orchestration.azure._http import SharedKeyClient
from orchestration.azure.connection import StorageAccount
from orchestration.azure.errors import Conflict, ResourceNotFound

API_VERSION = "2021-08-06"
MAX_VISIBILITY = 7 * 24 * 3600
MAX_MESSAGE_BYTES = 64 * 1024
_QUEUE_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$")
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_XML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


@dataclass(frozen=True, slots=True)
class SentMessage:
    id: str
    pop_receipt: str
    insertion_time: datetime
    expiration_time: datetime
    next_visible_time: datetime


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """A received (or peeked) message. Peeked messages have no pop receipt (``""``) and no
    next-visible time (None): they cannot be deleted or updated."""

    id: str
    pop_receipt: str
    text: str
    dequeue_count: int
    insertion_time: datetime
    expiration_time: datetime
    next_visible_time: datetime | None


def _time(node: ET.Element, tag: str) -> datetime:
    text = node.findtext(tag)
    if not text:
        raise ValueError(f"queue response has no {tag}")
    return parsedate_to_datetime(text)


def _check_queue(name: str) -> str:
    if not _QUEUE_NAME.match(name):
        raise ValueError(
            f"invalid queue name {name!r}: 3-63 lowercase letters, digits and single hyphens"
        )
    return name


def _check_visibility(seconds: int, what: str = "visibility_timeout") -> str:
    if not 0 <= seconds <= MAX_VISIBILITY:
        raise ValueError(f"{what} must be between 0 and {MAX_VISIBILITY} s, got {seconds}")
    return str(int(seconds))


def _message_body(text: str) -> bytes:
    if _XML_INVALID.search(text):
        raise ValueError(
            "message text contains characters XML cannot carry; base64-encode the payload"
        )
    escaped = text.translate(_XML_ESCAPES)
    return f"<QueueMessage><MessageText>{escaped}</MessageText></QueueMessage>".encode()


def _parse_messages(body: bytes, peek: bool = False) -> list[QueueMessage]:
    root = ET.fromstring(body)
    out: list[QueueMessage] = []
    for node in root.iter("QueueMessage"):
        out.append(
            QueueMessage(
                id=node.findtext("MessageId") or "",
                pop_receipt="" if peek else node.findtext("PopReceipt") or "",
                text=node.findtext("MessageText") or "",
                dequeue_count=int(node.findtext("DequeueCount") or 0),
                insertion_time=_time(node, "InsertionTime"),
                expiration_time=_time(node, "ExpirationTime"),
                next_visible_time=None if peek else _time(node, "TimeNextVisible"),
            )
        )
    return out


class QueueService:
    """Queue operations for one account; cheap to create, shares the account's session."""

    def __init__(self, account: StorageAccount) -> None:
        self.account = account
        self._client = SharedKeyClient(account, account.settings.queue_endpoint, API_VERSION)

    # -- queues

    async def create_queue(self, queue: str) -> bool:
        """Create ``queue``; False (no error) when it already exists."""
        try:
            resp = await self._client.call(
                "queue.create_queue", "PUT", f"/{_check_queue(queue)}", idempotent=True
            )
        except Conflict as exc:
            if exc.code == "QueueAlreadyExists":
                return False
            raise
        return resp.status == 201

    async def delete_queue(self, queue: str) -> bool:
        """Delete ``queue``; False (no error) when it does not exist."""
        try:
            await self._client.call(
                "queue.delete_queue", "DELETE", f"/{_check_queue(queue)}", idempotent=True
            )
        except ResourceNotFound:
            return False
        return True

    async def list_queues(self, prefix: str | None = None) -> builtins.list[str]:
        """Names of the account's queues (starting with ``prefix``), following markers."""
        names: list[str] = []
        marker: str | None = None
        while True:
            query = [("comp", "list")]
            if prefix:
                query.append(("prefix", prefix))
            if marker:
                query.append(("marker", marker))
            resp = await self._client.call(
                "queue.list_queues", "GET", "/", query=query, idempotent=True
            )
            root = ET.fromstring(resp.body)
            names.extend(n.findtext("Name") or "" for n in root.iter("Queue"))
            marker = root.findtext("NextMarker")
            if not marker:
                return names

    async def approximate_count(self, queue: str) -> int:
        """The service's approximate number of messages in ``queue`` (visible or not)."""
        resp = await self._client.call(
            "queue.count",
            "GET",
            f"/{_check_queue(queue)}",
            query=[("comp", "metadata")],
            idempotent=True,
        )
        return int(resp.headers.get("x-ms-approximate-messages-count", "0"))

    async def clear(self, queue: str) -> None:
        """Delete every message in ``queue``."""
        await self._client.call(
            "queue.clear", "DELETE", f"/{_check_queue(queue)}/messages", idempotent=True
        )

    # -- messages

    async def send(
        self,
        queue: str,
        text: str,
        visibility_timeout: int = 0,
        ttl: int | None = None,
    ) -> SentMessage:
        """Put a message; it becomes visible after ``visibility_timeout`` seconds (max 7 days).
        ``ttl`` in seconds (-1: never expires; None: the service's 7 days)."""
        size = len(text.encode("utf-8"))
        if size > MAX_MESSAGE_BYTES:
            raise ValueError(f"message is {size} bytes, over the 64 KiB limit")
        body = _message_body(text)
        query = [("visibilitytimeout", _check_visibility(visibility_timeout))]
        if ttl is not None:
            if ttl != -1 and ttl < 1:
                raise ValueError("ttl must be -1 or at least 1 second")
            query.append(("messagettl", str(int(ttl))))
        resp = await self._client.call(
            "queue.send",
            "POST",
            f"/{_check_queue(queue)}/messages",
            query=query,
            body=body,
            headers={"Content-Type": "application/xml"},
            idempotent=False,
        )
        node = ET.fromstring(resp.body).find("QueueMessage")
        if node is None:
            raise ValueError("Put Message response has no QueueMessage")
        return SentMessage(
            id=node.findtext("MessageId") or "",
            pop_receipt=node.findtext("PopReceipt") or "",
            insertion_time=_time(node, "InsertionTime"),
            expiration_time=_time(node, "ExpirationTime"),
            next_visible_time=_time(node, "TimeNextVisible"),
        )

    async def receive(
        self, queue: str, max_messages: int = 32, visibility_timeout: int = 30
    ) -> builtins.list[QueueMessage]:
        """Up to ``max_messages`` (1-32) visible messages, hidden for ``visibility_timeout``
        seconds (at least 1). A lost reply only hides messages until the timeout, so this
        request is retried like a read."""
        if not 1 <= max_messages <= 32:
            raise ValueError("max_messages must be between 1 and 32")
        if visibility_timeout < 1:
            raise ValueError("visibility_timeout must be at least 1 s for a receive")
        resp = await self._client.call(
            "queue.receive",
            "GET",
            f"/{_check_queue(queue)}/messages",
            query=[
                ("numofmessages", str(max_messages)),
                ("visibilitytimeout", _check_visibility(visibility_timeout)),
            ],
            idempotent=True,
        )
        return _parse_messages(resp.body)

    async def peek(self, queue: str, max_messages: int = 32) -> builtins.list[QueueMessage]:
        """Up to ``max_messages`` visible messages, without hiding them."""
        if not 1 <= max_messages <= 32:
            raise ValueError("max_messages must be between 1 and 32")
        resp = await self._client.call(
            "queue.peek",
            "GET",
            f"/{_check_queue(queue)}/messages",
            query=[("numofmessages", str(max_messages)), ("peekonly", "true")],
            idempotent=True,
        )
        return _parse_messages(resp.body, peek=True)

    async def delete(self, queue: str, message_id: str, pop_receipt: str) -> None:
        """Delete a received message. A stale pop receipt (the message became visible again
        and was received anew) raises StorageError 400 ``PopReceiptMismatch``; a message that
        is gone raises ResourceNotFound (404 ``MessageNotFound``)."""
        await self._client.call(
            "queue.delete",
            "DELETE",
            f"/{_check_queue(queue)}/messages/{quote(message_id, safe='')}",
            query=[("popreceipt", pop_receipt)],
            idempotent=False,
        )

    async def update_visibility(
        self,
        queue: str,
        message_id: str,
        pop_receipt: str,
        visibility_timeout: int,
        text: str | None = None,
    ) -> str:
        """Hide the message for ``visibility_timeout`` more seconds (0: visible now), and
        replace its text when ``text`` is given. Returns the new pop receipt; the old one is
        no longer valid."""
        body = None if text is None else _message_body(text)
        resp = await self._client.call(
            "queue.update",
            "PUT",
            f"/{_check_queue(queue)}/messages/{quote(message_id, safe='')}",
            query=[
                ("popreceipt", pop_receipt),
                ("visibilitytimeout", _check_visibility(visibility_timeout)),
            ],
            body=body,
            headers=None if body is None else {"Content-Type": "application/xml"},
            idempotent=False,
        )
        return resp.headers["x-ms-popreceipt"]
