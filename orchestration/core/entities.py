"""Durable entities, pure: ids, operation requests, and one entity's batch of operations.

An entity is a small named object with durable state whose operations run one at a time
(Durable Functions' entities, Dapr's actors). Its id is `@name@key`, the instance id under
which the task hub keeps it. Operations reach it as `EventRaised` events named
`ENTITY_OPERATION` whose input is an `OperationRequest`; a call's answer goes back to the
calling orchestration as an event named `response_event(request id)`.

This module decides, without I/O or clock, what a batch of requests does to an entity:
`order` puts each sender's requests into the order they were sent (positions per sender),
holding back one that overtook its predecessor; `run_batch` runs the operations one after
another, each on the state the previous one left, rolling back an operation that raises.
The worker commits the new snapshot, the ids it applied and the messages it sends in one
write.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from orchestration.core import serialization
from orchestration.core.history import FailureDetails

ENTITY_OPERATION = "@op"
ENTITY_OPERATIONS = "@ops"  # several requests of one sender, in order, in one message
_RESPONSE_PREFIX = "@response:"
# How long a request may wait for one its sender sent before it (a message overtaken on the
# queue), and how long a sender's position is remembered (Durable Functions' default
# EntityMessageReorderWindow).
REORDER_WINDOW = timedelta(minutes=30)
# The most senders an entity remembers positions of; past it, the least recent are forgotten
# (their next request is taken in whatever order it comes).
MAX_SENDERS = 10_000
MAX_GAPS = 64  # positions given up on, remembered per sender

EntityFunction = Callable[["DurableEntityContext"], Any]


class EntityOperationError(Exception):
    """An entity operation raised: the call fails with the operation's error."""


class InvalidEntityIdError(ValueError):
    """Not an entity id (`@name@key`), or a name or key that cannot be one."""


@dataclass(frozen=True, slots=True)
class EntityId:
    """An entity's name and key, as `azure.durable_functions.EntityId`.

    Its string form is the instance id the task hub keeps it under: `@name@key`, the name in
    lower case (names are case-insensitive, keys are not).
    """

    name: str
    key: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "@" in self.name:
            raise InvalidEntityIdError(f"an entity name must be a non-empty text without '@': "
                                       f"{self.name!r}")  # fmt: skip
        if not isinstance(self.key, str):
            raise InvalidEntityIdError(f"an entity key must be text: {self.key!r}")

    @staticmethod
    def get_scheduler_id(entity_id: EntityId) -> str:
        return f"@{entity_id.name.lower()}@{entity_id.key}"

    @staticmethod
    def get_entity_id(scheduler_id: str) -> EntityId:
        return entity_id_of(scheduler_id)

    @staticmethod
    def get_entity_id_url_path(entity_id: EntityId) -> str:
        """The entity's path under the management API: `entities/{name}/{key}`."""
        return f"entities/{entity_id.name}/{entity_id.key}"

    def __str__(self) -> str:
        return self.get_scheduler_id(self)


def is_entity_instance(instance_id: str) -> bool:
    return instance_id.startswith("@") and instance_id.find("@", 1) > 1


def entity_id_of(instance_id: str) -> EntityId:
    """The EntityId of an entity's instance id (`@name@key`)."""
    if not is_entity_instance(instance_id):
        raise InvalidEntityIdError(f"not an entity id: {instance_id!r}")
    name, key = instance_id[1:].split("@", 1)
    return EntityId(name, key)


def as_entity_id(entity: EntityId | str) -> EntityId:
    return entity if isinstance(entity, EntityId) else entity_id_of(entity)


def is_entity_request(event_name: str) -> bool:
    return event_name in (ENTITY_OPERATION, ENTITY_OPERATIONS)


def requests_of(event_name: str, text: str | None) -> list[OperationRequest]:
    """The requests an `@op` or `@ops` event carries (ValueError if it carries none)."""
    if event_name == ENTITY_OPERATION:
        return [OperationRequest.from_json(text)]
    try:
        items = json.loads(text or "")
    except ValueError as error:
        raise ValueError(f"not a list of entity operation requests: {error}") from error
    if not isinstance(items, list) or not items:
        raise ValueError("not a list of entity operation requests")
    return [OperationRequest.from_dict(item) for item in items]


def pack_requests(texts: Sequence[str]) -> tuple[str, str]:
    """(event name, input) of one message carrying the requests `texts` (JSON), in order."""
    if len(texts) == 1:
        return ENTITY_OPERATION, texts[0]
    return ENTITY_OPERATIONS, "[" + ",".join(texts) + "]"


def mark_possible_duplicates(event_name: str, text: str | None) -> str:
    """The input of an `@op`/`@ops` event sent again, each request marked as a possible copy."""
    marked = [r.as_possible_duplicate().to_json() for r in requests_of(event_name, text)]
    return pack_requests(marked)[1]


def response_event(request_id: str) -> str:
    """The name of the event that answers call `request_id`."""
    return f"{_RESPONSE_PREFIX}{request_id}"


# -- requests -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OperationRequest:
    """One operation for an entity: a signal (one-way) or a call (`reply_to` waits).

    `sender` and `position` order the requests of one sender (an orchestration's execution,
    or an entity): the sender numbers the requests it sends to each entity 0, 1, 2, ...
    `sent_at` is the sender's time. `possible_duplicate` marks a copy sent again by a repair:
    the entity looks it up among the requests it applied before taking it.
    """

    id: str
    operation: str
    input: str | None = None
    signal: bool = True
    reply_to: str | None = None
    reply_execution: str | None = None
    sender: str | None = None
    position: int | None = None
    sent_at: datetime | None = None
    previous_at: datetime | None = None  # when the sender sent its previous one to us
    possible_duplicate: bool = False

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "op": self.operation}
        if self.input is not None:
            data["in"] = self.input
        if not self.signal:
            data["call"] = True
            data["to"] = self.reply_to
            if self.reply_execution is not None:
                data["tx"] = self.reply_execution
        if self.sender is not None:
            data["src"] = self.sender
            data["pos"] = self.position
        if self.sent_at is not None:
            data["t"] = self.sent_at.isoformat()
        if self.previous_at is not None:
            data["pt"] = self.previous_at.isoformat()
        if self.possible_duplicate:
            data["dup"] = True
        return data

    @classmethod
    def from_json(cls, text: str | None) -> OperationRequest:
        try:
            data = json.loads(text or "")
        except ValueError as error:
            raise ValueError(f"not an entity operation request: {error}") from error
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> OperationRequest:
        try:
            if not isinstance(data, dict):
                raise TypeError("not an object")
            position = data.get("pos")
            sent_at, previous_at = data.get("t"), data.get("pt")
            return cls(
                id=str(data["id"]),
                operation=str(data["op"]),
                input=data.get("in"),
                signal=not data.get("call", False),
                reply_to=data.get("to"),
                reply_execution=data.get("tx"),
                sender=data.get("src"),
                position=int(position) if position is not None else None,
                sent_at=datetime.fromisoformat(sent_at) if sent_at else None,
                previous_at=datetime.fromisoformat(previous_at) if previous_at else None,
                possible_duplicate=bool(data.get("dup", False)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not an entity operation request: {error}") from error

    def as_possible_duplicate(self) -> OperationRequest:
        return dataclasses.replace(self, possible_duplicate=True)


@dataclass(frozen=True, slots=True)
class EntityMessage:
    """A message an entity's batch sends: a call's answer, or a signal to another entity."""

    instance_id: str
    event_name: str
    input: str | None
    message_id: str
    execution_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"i": self.instance_id, "n": self.event_name, "in": self.input,
                "id": self.message_id, "x": self.execution_id}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EntityMessage:
        return cls(data["i"], data["n"], data.get("in"), data["id"], data.get("x"))


def response_payload(result: str | None = None, failure: FailureDetails | None = None) -> str:
    """What a call's answer carries: the result's JSON text, or why the operation failed."""
    if failure is not None:
        return json.dumps({"error": failure.to_dict()}, separators=(",", ":"))
    return json.dumps({"result": result}, separators=(",", ":"))


def read_response(text: str | None) -> tuple[Any, FailureDetails | None]:
    """(result, None) or (None, failure) from an answer's payload."""
    data = json.loads(text or "{}")
    if "error" in data:
        return None, FailureDetails.from_dict(data["error"])
    return serialization.loads(data.get("result")), None


# -- the snapshot ----------------------------------------------------------------------------
@dataclass
class EntitySnapshot:
    """What the task hub keeps of an entity between batches."""

    exists: bool = False
    state: str | None = None  # the state's JSON text
    # sender -> (next position expected, when it was last heard from, positions before the
    # next that were given up on and may still come)
    senders: dict[str, tuple[int, datetime, tuple[int, ...]]] = field(default_factory=dict)
    early: list[OperationRequest] = field(default_factory=list)
    # entity -> (next position of this entity's own signals to it, when it sent the last)
    positions: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    batches: int = 0

    def to_json(self) -> str:
        data: dict[str, Any] = {"exists": self.exists, "batches": self.batches}
        if self.state is not None:
            data["state"] = self.state
        if self.senders:
            data["senders"] = {
                key: [n, t.isoformat(), *([list(gaps)] if gaps else [])]
                for key, (n, t, gaps) in self.senders.items()
            }
        if self.early:
            data["early"] = [request.to_json() for request in self.early]
        if self.positions:
            data["positions"] = {k: [n, t.isoformat()] for k, (n, t) in self.positions.items()}
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> EntitySnapshot:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            exists=bool(data.get("exists")),
            state=data.get("state"),
            senders={
                key: (
                    int(mark[0]),
                    datetime.fromisoformat(mark[1]),
                    tuple(mark[2] if len(mark) > 2 else ()),
                )
                for key, mark in data.get("senders", {}).items()
            },
            early=[OperationRequest.from_json(item) for item in data.get("early", [])],
            positions={
                key: (int(n), datetime.fromisoformat(t))
                for key, (n, t) in data.get("positions", {}).items()
            },
            batches=int(data.get("batches", 0)),
        )

    @property
    def is_empty(self) -> bool:
        """No state and no request held back: nothing left of the entity."""
        return not self.exists and not self.early

    def copy(self) -> EntitySnapshot:
        return EntitySnapshot(
            self.exists, self.state, dict(self.senders), list(self.early),
            dict(self.positions), self.batches,
        )  # fmt: skip

    def next_release(self, window: timedelta = REORDER_WINDOW) -> datetime | None:
        """When the earliest held-back request is taken even without its predecessor."""
        times = [r.sent_at + window for r in self.early if r.sent_at is not None]
        return min(times, default=None)


# -- ordering ---------------------------------------------------------------------------------
def order(
    snapshot: EntitySnapshot,
    requests: Iterable[OperationRequest],
    now: datetime,
    window: timedelta = REORDER_WINDOW,
) -> list[OperationRequest]:
    """The requests to run now, in order; updates the snapshot's senders and held-back
    requests.

    Requests without a sender run in the order they came. A sender's request runs after
    every one it sent before (by position); one that overtook its predecessor is held back
    until the predecessor comes, or until `window` has passed since it was sent. A position
    that already ran is a copy, dropped. A sender not heard from within `window` is
    forgotten; its next request runs at once when the one before it is that old.
    """
    ready: list[OperationRequest] = []
    held: dict[str, dict[int, OperationRequest]] = {}

    def take(request: OperationRequest, sender: str, position: int, skip: bool = True) -> None:
        ready.append(request)
        expected, _, gaps = snapshot.senders.get(sender, (0, now, ()))
        if position in gaps:  # one given up on, come after all: it runs, out of order
            snapshot.senders[sender] = (expected, now, tuple(g for g in gaps if g != position))
            return
        # Overdue: the ones before it are given up on (they run if they come after all).
        skipped = tuple(range(max(expected, position - MAX_GAPS), position)) if skip else ()
        snapshot.senders[sender] = (position + 1, now, (*gaps, *skipped)[-MAX_GAPS:])
        successor = held.get(sender, {}).pop(position + 1, None)
        if successor is not None:
            take(successor, sender, position + 1)

    for request in [*snapshot.early, *requests]:
        sender, position = request.sender, request.position
        if sender is None or position is None:
            ready.append(request)
            continue
        known = snapshot.senders.get(sender)
        expected = known[0] if known is not None else 0
        if known is not None and position in known[2]:
            take(request, sender, position)
            continue
        if position < expected or position in held.get(sender, {}):
            continue  # this position already ran (or waits): a copy
        overdue = request.sent_at is not None and now - request.sent_at >= window
        predecessor_gone = (
            known is None and request.previous_at is not None and now - request.previous_at > window
        )
        if position == expected or overdue or predecessor_gone:
            take(request, sender, position, skip=not predecessor_gone)
        else:
            held.setdefault(sender, {})[position] = request
    snapshot.early = [r for waiting in held.values() for _, r in sorted(waiting.items())]
    _forget_senders(snapshot, now, window)
    return ready


def _forget_senders(snapshot: EntitySnapshot, now: datetime, window: timedelta) -> None:
    held = {r.sender for r in snapshot.early}
    stale = [k for k, (_, t, _) in snapshot.senders.items() if now - t > window and k not in held]
    for key in stale:
        del snapshot.senders[key]
    if len(snapshot.senders) > MAX_SENDERS:
        by_age = sorted(snapshot.senders.items(), key=lambda item: item[1][1])
        for key, _ in by_age[: len(snapshot.senders) - MAX_SENDERS]:
            if key not in held:
                del snapshot.senders[key]


# -- running operations --------------------------------------------------------------------
class DurableEntityContext:
    """What an entity function sees of one operation, as azure-functions-durable's."""

    def __init__(self, entity_id: EntityId, batch: _Batch, request: OperationRequest) -> None:
        self._entity_id = entity_id
        self._batch = batch
        self._request = request
        self._result: str | None = None
        self._destruct = False

    @property
    def entity_name(self) -> str:
        return self._entity_id.name

    @property
    def entity_key(self) -> str:
        return self._entity_id.key

    @property
    def entity_id(self) -> EntityId:
        return self._entity_id

    @property
    def operation_name(self) -> str:
        return self._request.operation

    @property
    def is_newly_constructed(self) -> bool:
        return not self._batch.exists

    @classmethod
    def from_json(cls, json_str: str) -> DurableEntityContext:
        """DF's v1 entry point: refused with what to write instead."""
        from orchestration.legacy import refuse_entity_from_json

        refuse_entity_from_json()

    def get_input(self, expected_type: type | None = None) -> Any:
        """The operation's input, decoded from JSON (custom objects rebuilt)."""
        return serialization.decode(self._request.input, expected_type)

    def get_state(
        self, initializer: Callable[[], Any] | None = None, expected_type: type | None = None
    ) -> Any:
        """The entity's state (custom objects rebuilt); for an entity without one,
        `initializer()` (or None)."""
        self._batch.progress += 1
        if not self._batch.exists:
            return initializer() if initializer is not None else None
        return serialization.revive(copy.deepcopy(self._batch.state), expected_type)

    def set_state(self, state: Any) -> None:
        """Replace the entity's state (JSON-serializable)."""
        self._batch.progress += 1
        # As stored: what a later batch reads back (refusing what cannot be stored).
        self._batch.state = serialization.loads(serialization.dumps(state))
        self._batch.exists = True
        self._destruct = False

    def set_result(self, result: Any) -> None:
        """The operation's result, what a caller's `call_entity` returns."""
        self._result = serialization.dumps(result)

    def destruct_on_exit(self) -> None:
        """Delete the entity (its state) when this operation ends."""
        self._destruct = True

    def signal_entity(
        self, entity_id: EntityId | str, operation_name: str, input_: Any = None
    ) -> None:
        """Signal another entity (sent when this operation's batch is committed)."""
        target = str(as_entity_id(entity_id))
        self._batch.signals.append((target, operation_name, serialization.dumps(input_)))


class Entity:
    """azure-functions-durable's `Entity.create(fn)`: the function-based entity style."""

    def __init__(self, function: EntityFunction) -> None:
        self.fn = function

    @classmethod
    def create(cls, fn: EntityFunction) -> Entity:
        return cls(fn)

    def __call__(self, context: DurableEntityContext) -> Any:
        return self.fn(context)


def entity_function_of(function: Callable[..., Any]) -> EntityFunction:
    """The user's function behind what was registered (`Entity.create(fn)` or `fn`)."""
    return function.fn if isinstance(function, Entity) else function


@dataclass
class OperationOutcome:
    request: OperationRequest
    result: str | None = None
    failure: FailureDetails | None = None


@dataclass
class BatchOutcome:
    """What a batch did: the new snapshot, each operation's outcome, what it sends."""

    snapshot: EntitySnapshot
    outcomes: list[OperationOutcome]
    messages: list[EntityMessage]


class _Batch:
    """The live state of an entity while its batch runs (watched for progress)."""

    def __init__(self, snapshot: EntitySnapshot) -> None:
        self.progress = 0
        self.exists = snapshot.exists
        self.state: Any = serialization.loads(snapshot.state) if snapshot.exists else None
        self.signals: list[tuple[str, str, str | None]] = []


class EntityBatch:
    """Runs one batch of an entity's operations (in the worker's watched thread)."""

    def __init__(self, entity_id: EntityId, function: EntityFunction | None) -> None:
        self.entity_id = entity_id
        self.instance_id = str(entity_id)
        self.function = function
        self._live: _Batch | None = None

    @property
    def name(self) -> str:
        return f"@{self.entity_id.name}"

    @property
    def progress(self) -> int:
        return self._live.progress if self._live is not None else 0

    def run(
        self,
        snapshot: EntitySnapshot,
        requests: Sequence[OperationRequest],
        now: datetime,
        refused: Mapping[str, FailureDetails] | None = None,
    ) -> BatchOutcome:
        """Run `requests` in order on `snapshot` (which is not changed); the new snapshot.

        A request whose id `refused` names is not run: it fails with that failure (a request
        that could not be processed), and takes its turn, so its sender's next ones run."""
        after = snapshot.copy()
        live = self._live = _Batch(snapshot)
        outcomes: list[OperationOutcome] = []
        messages: list[EntityMessage] = []
        signals: dict[str, list[str]] = {}  # to each entity, in the order sent
        signal_count = 0
        after.batches += 1
        for request in requests:
            live.progress += 1
            failure = (refused or {}).get(request.id)
            sent: list[tuple[str, str, str | None]] = []
            if failure is not None:
                outcome = OperationOutcome(request, failure=failure)
            else:
                outcome, sent = self._run_one(live, request)
            outcomes.append(outcome)
            if not request.signal and request.reply_to is not None:
                payload = response_payload(outcome.result, outcome.failure)
                messages.append(
                    EntityMessage(
                        request.reply_to,
                        response_event(request.id),
                        payload,
                        f"{request.id}:response",
                        request.reply_execution,
                    )
                )
            for target, operation, encoded in sent:
                position, previous_at = after.positions.get(target, (0, None))
                after.positions[target] = (position + 1, now)
                signal = OperationRequest(
                    id=f"{self.instance_id}:{after.batches}:{signal_count}",
                    operation=operation,
                    input=encoded,
                    sender=self.instance_id,
                    position=position,
                    sent_at=now,
                    previous_at=previous_at,
                )
                signals.setdefault(target, []).append(signal.to_json())
                signal_count += 1
        for target, texts in signals.items():
            name, packed = pack_requests(texts)
            message_id = f"{self.instance_id}:{after.batches}:signals:{target}"
            messages.append(EntityMessage(target, name, packed, message_id))
        after.exists = live.exists
        after.state = serialization.dumps(live.state) if live.exists else None
        return BatchOutcome(after, outcomes, messages)

    def _run_one(
        self, live: _Batch, request: OperationRequest
    ) -> tuple[OperationOutcome, list[tuple[str, str, str | None]]]:
        """One operation; on an exception the state and signals are as before it."""
        saved_exists, saved_state = live.exists, copy.deepcopy(live.state)
        live.signals = []
        context = DurableEntityContext(self.entity_id, live, request)
        try:
            if self.function is None:
                raise LookupError(
                    f"No entity named {self.entity_id.name!r} is registered in this app."
                )
            returned = self.function(context)
            if inspect.iscoroutine(returned):
                returned.close()
                raise TypeError("an entity function must not be async")
        except Exception as error:  # the user's code: the operation fails, the batch goes on
            live.exists, live.state = saved_exists, saved_state
            failure = FailureDetails(
                type(error).__name__, str(error), "".join(traceback.format_exception(error))
            )
            return OperationOutcome(request, failure=failure), []
        if context._destruct:
            live.exists, live.state = False, None
        return OperationOutcome(request, result=context._result), live.signals
