"""The engine's queue messages: what travels on the control and work-item queues.

Messages are JSON, base64-encoded on the queue (the Functions host's default encoding, so a
queue trigger on Azure reads them as they are). A message over the queue's 48 KiB of raw
payload is moved to a blob and replaced by a reference.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestration.core import serialization
from orchestration.core.history import HistoryEvent, event_from_dict, event_to_dict

MESSAGE_VERSION = 1
MAX_RAW_MESSAGE_CHARS = 45_000


class MalformedMessageError(ValueError):
    """A message on an engine queue that is not one of ours (or is corrupt)."""


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """An event for an orchestration instance (or, with no event, a wake-up to repair it).

    `execution_id` pins the event to one execution (a result for an activity an earlier
    execution scheduled must not reach its continue-as-new successor); None means any.
    """

    instance_id: str
    event: HistoryEvent | None
    execution_id: str | None = None
    message_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"v": MESSAGE_VERSION, "k": "control", "id": self.message_id}
        data["i"] = self.instance_id
        if self.execution_id is not None:
            data["x"] = self.execution_id
        if self.event is not None:
            data["e"] = event_to_dict(self.event)
        return data


@dataclass(frozen=True, slots=True)
class ActivityMessage:
    """Run activity `name` for task `task_id` of an instance's execution.

    `attempt` counts the tries of a retried call (1 for the first); `trace` is the W3C
    traceparent of the execution's orchestration span, when it is traced."""

    instance_id: str
    execution_id: str | None
    task_id: int
    name: str
    input: str | None
    attempt: int = 1
    trace: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"v": MESSAGE_VERSION, "k": "activity", "i": self.instance_id}
        data.update({"x": self.execution_id, "t": self.task_id, "n": self.name})
        if self.input is not None:
            data["in"] = self.input
        if self.attempt != 1:
            data["at"] = self.attempt
        if self.trace is not None:
            data["tp"] = self.trace
        return data


@dataclass(frozen=True, slots=True)
class ActivityBatch:
    """Several activities of one step in one work item: a wide fan-out costs one queue send,
    receive and delete per batch instead of per activity (and keeps the queue short)."""

    instance_id: str
    execution_id: str | None
    activities: tuple[ActivityMessage, ...]

    def to_json(self) -> dict[str, Any]:
        items = []
        for activity in self.activities:
            item: dict[str, Any] = {"t": activity.task_id, "n": activity.name}
            if activity.input is not None:
                item["in"] = activity.input
            if activity.attempt != 1:
                item["at"] = activity.attempt
            items.append(item)
        data = {"v": MESSAGE_VERSION, "k": "activities", "i": self.instance_id,
                "x": self.execution_id, "a": items}  # fmt: skip
        # One execution's activities: they share its orchestration span.
        trace = self.activities[0].trace if self.activities else None
        if trace is not None:
            data["tp"] = trace
        return data


EngineMessage = ControlMessage | ActivityMessage | ActivityBatch
WorkItem = ActivityMessage | ActivityBatch

# A step's activities spread over at least this many work items (so that other hosts take
# their share); beyond that, up to MAX_BATCH share one.
SPREAD = 64
MAX_BATCH = 16


def activities_of(item: WorkItem) -> tuple[ActivityMessage, ...]:
    """The activities a work item asks for."""
    return item.activities if isinstance(item, ActivityBatch) else (item,)


def pack_activities(messages: Sequence[ActivityMessage]) -> list[WorkItem]:
    """One step's activities as work items: one each for up to SPREAD of them, else batches
    of up to MAX_BATCH (a fan-out of 20,000 is 1,250 messages, not 20,000)."""
    per_item = min(MAX_BATCH, -(-len(messages) // SPREAD))
    if per_item <= 1:
        return list(messages)
    first = messages[0]
    return [
        ActivityBatch(first.instance_id, first.execution_id, tuple(messages[i : i + per_item]))
        for i in range(0, len(messages), per_item)
    ]


def encode(data: dict[str, Any]) -> str:
    """Queue text of a message body (base64 of its JSON)."""
    raw = json.dumps(data, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


def raw_json(text: str | bytes) -> dict[str, Any]:
    """Parse queue text, accepting base64 or plain JSON, refusing anything else clearly."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    stripped = text.strip()
    if not stripped.startswith("{"):
        try:
            stripped = base64.b64decode(stripped, validate=True).decode("utf-8")
        except ValueError as error:  # binascii.Error, UnicodeDecodeError, non-ASCII text
            raise MalformedMessageError("message is neither JSON nor base64 JSON") from error
    try:
        data = serialization.loads(stripped)
    except ValueError as error:  # JSONDecodeError, InvalidPayloadError
        raise MalformedMessageError(f"message is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise MalformedMessageError("message JSON is not an object")
    return data


def _attempt(value: object) -> int:
    """Which try of a retried call a message is: only telemetry reads it, so a bad value
    never costs the work."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def parse(data: dict[str, Any]) -> EngineMessage:
    """An engine message from its (already blob-resolved) JSON body."""
    if data.get("v") != MESSAGE_VERSION:
        raise MalformedMessageError(f"unknown message version {data.get('v')!r}")
    try:
        kind = data["k"]
        instance_id = data["i"]
        if not isinstance(instance_id, str):
            raise MalformedMessageError("instance id is not a string")
        if kind == "control":
            event = event_from_dict(data["e"]) if "e" in data else None
            return ControlMessage(instance_id, event, data.get("x"), str(data["id"]))
        trace = data.get("tp")
        if trace is not None and not isinstance(trace, str):
            trace = None  # a bad trace context never costs the work
        if kind == "activity":
            return ActivityMessage(
                instance_id,
                data.get("x"),
                int(data["t"]),
                str(data["n"]),
                data.get("in"),
                _attempt(data.get("at")),
                trace,
            )
        if kind == "activities":
            execution_id = data.get("x")
            items = data["a"]
            if not isinstance(items, list) or not items:
                raise MalformedMessageError("an activity batch holds no activities")
            activities = tuple(
                ActivityMessage(
                    instance_id,
                    execution_id,
                    int(item["t"]),
                    str(item["n"]),
                    item.get("in"),
                    _attempt(item.get("at")),
                    trace,
                )
                for item in items
            )
            return ActivityBatch(instance_id, execution_id, activities)
    except MalformedMessageError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise MalformedMessageError(f"message is missing or has a bad field: {error}") from error
    raise MalformedMessageError(f"unknown message kind {kind!r}")
