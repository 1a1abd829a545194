"""What sits in the task hub's poison queues, and putting one message back or away.

Two writers fill `<queue>-poison`: the engine's delivery, with an envelope
`{"reason": ..., "body": ...}` (a message it could not decode or dispatch), and the host,
which moves a message there unchanged once it has failed `maxDequeueCount` times. Both are
read here. Queue storage addresses a message only through a receive, and a receive (or a
peek) sees at most 32 visible messages: the first 32 of each poison queue are listed and can
be requeued or discarded; more are counted, not listed. Requeue and discard receive those
32 to find one (raising the others' dequeue counts, which nothing reads on a poison queue)
and make the others visible again at once; a second requeue at the same moment may not see
a message the first holds, and answers 404.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from datetime import datetime

from orchestration.azure import ResourceNotFound
from orchestration.azure.queues import QueueMessage
from orchestration.storage.hub import TaskHub

LISTED = 32  # a peek's (and a receive's) limit
_HOLD_SECONDS = 30  # how long a requeue or discard hides what it received


@dataclass(frozen=True)
class PoisonMessage:
    """One message of a poison queue: the original body and why it was moved."""

    id: str
    queue: str  # the engine queue it came from
    inserted_at: datetime
    dequeue_count: int
    reason: str
    body: str  # the original message's text, decoded
    requeue_text: str  # what to send back to `queue`


class PoisonNotFound(LookupError):
    """No visible message with that id among the first 32 of the poison queue."""


def _decoded(text: str) -> str:
    """Queue text as readable text: base64 decoded when it is base64 of UTF-8."""
    stripped = text.strip()
    if stripped.startswith("{"):
        return stripped
    try:
        return base64.b64decode(stripped, validate=True).decode("utf-8")
    except ValueError:
        return text


def read(queue: str, message: QueueMessage, max_dequeue_count: int) -> PoisonMessage:
    """A poison queue message as what it carries, whichever writer put it there."""
    text = _decoded(message.text)
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and set(data) == {"reason", "body"}:
        body = str(data["body"])
        requeue = base64.b64encode(body.encode("utf-8")).decode("ascii")
        return PoisonMessage(
            message.id,
            queue,
            message.insertion_time,
            message.dequeue_count,
            str(data["reason"]),
            body,
            requeue,
        )
    return PoisonMessage(
        message.id,
        queue,
        message.insertion_time,
        message.dequeue_count,
        f"failed {max_dequeue_count} times: the host moved it here",
        text,
        message.text,
    )


class PoisonQueues:
    """The poison queues of a task hub's engine queues."""

    def __init__(self, hub: TaskHub, max_dequeue_count: int = 5) -> None:
        self.hub = hub
        self.max_dequeue_count = max_dequeue_count

    def source(self, queue: str) -> str:
        """`queue` when it is one of the hub's engine queues (ValueError otherwise)."""
        if queue not in self.hub.engine_queues:
            raise ValueError(
                f"{queue!r} is not a queue of this task hub; its queues are "
                f"{', '.join(self.hub.engine_queues)}"
            )
        return queue

    async def depth(self, queue: str) -> int:
        try:
            return await self.hub.queues.approximate_count(f"{self.source(queue)}-poison")
        except ResourceNotFound:
            return 0

    async def peek(self, queue: str) -> list[PoisonMessage]:
        """The first messages (at most 32) of `queue`'s poison queue, oldest first."""
        try:
            found = await self.hub.queues.peek(f"{self.source(queue)}-poison", LISTED)
        except ResourceNotFound:
            return []
        return [read(queue, message, self.max_dequeue_count) for message in found]

    async def find(self, queue: str, message_id: str) -> PoisonMessage:
        for message in await self.peek(queue):
            if message.id == message_id:
                return message
        raise PoisonNotFound(message_id)

    async def _take(self, queue: str, message_id: str) -> tuple[QueueMessage, PoisonMessage]:
        """Receive the poison queue's first messages, keep `message_id`'s hidden and make the
        others visible again at once."""
        poison = f"{self.source(queue)}-poison"
        try:
            received = await self.hub.queues.receive(poison, LISTED, _HOLD_SECONDS)
        except ResourceNotFound:
            raise PoisonNotFound(message_id) from None
        target = next((m for m in received if m.id == message_id), None)
        others = [m for m in received if m is not target]
        await asyncio.gather(
            *(self.hub.queues.update_visibility(poison, m.id, m.pop_receipt, 0) for m in others)
        )
        if target is None:
            raise PoisonNotFound(message_id)
        return target, read(queue, target, self.max_dequeue_count)

    async def requeue(self, queue: str, message_id: str) -> PoisonMessage:
        """Send the message's original body back to its queue, then delete it here. A crash
        between the two leaves it in both: control and activity messages carry ids the
        engine applies once, but a start without an instance id would start twice."""
        received, message = await self._take(queue, message_id)
        await self.hub.queues.send(queue, message.requeue_text)
        await self.hub.queues.delete(f"{queue}-poison", received.id, received.pop_receipt)
        return message

    async def discard(self, queue: str, message_id: str) -> PoisonMessage:
        received, message = await self._take(queue, message_id)
        await self.hub.queues.delete(f"{queue}-poison", received.id, received.pop_receipt)
        return message
