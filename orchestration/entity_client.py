"""The durable client's entity calls: signal, read, list and clean entities.

Signatures and shapes follow azure-functions-durable's (`signal_entity`,
`read_entity_state` and its `EntityStateResponse`); listing and cleaning follow Durable
Functions' .NET client. Signals sent at once from this process to one entity share a queue
message (`SignalBatcher`): a burst of 1,000 signals costs a few sends, not 1,000.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestration.core import serialization
from orchestration.core.entities import (
    EntityId,
    OperationRequest,
    as_entity_id,
    entity_id_of,
    pack_requests,
)
from orchestration.core.history import EventRaised
from orchestration.storage.entities import EntityStore
from orchestration.storage.hub import TaskHub
from orchestration.storage.messages import ControlMessage
from orchestration.storage.names import (
    validate_event_name,
    validate_function_name,
    validate_instance_id,
)

MAX_PACKED = 100  # requests per queue message


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class EntityStateResponse:
    """What `read_entity_state` answers, as azure-functions-durable's."""

    entity_exists: bool
    entity_state: Any = None


@dataclass
class EntityMetadata:
    """One entity of a listing: its id, last change, state and requests waiting."""

    entity_id: EntityId
    last_modified_time: datetime
    state: Any = None
    backlog: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "entityId": {"name": self.entity_id.name, "key": self.entity_id.key},
            "id": str(self.entity_id),
            "lastModifiedTime": _iso(self.last_modified_time),
            "state": self.state,
            "backlogQueueSize": self.backlog,
        }


class SignalBatcher:
    """Packs the signals sent to one entity in one turn of the event loop into one message."""

    def __init__(self, hub: TaskHub) -> None:
        self.hub = hub
        self._pending: dict[str, list[tuple[str, asyncio.Future[None]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.messages = 0

    async def send(self, entity: str, request: str) -> None:
        """Send one request (JSON) to `entity`; returns once its message is on the queue."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        waiting = self._pending.get(entity)
        if waiting is None:
            waiting = self._pending[entity] = []
            loop.call_soon(self._start_flush, entity)
        waiting.append((request, done))
        await done

    def _start_flush(self, entity: str) -> None:
        task = asyncio.get_running_loop().create_task(self._flush(entity))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self, entity: str) -> None:
        batch = self._pending.pop(entity, [])
        for start in range(0, len(batch), MAX_PACKED):
            part = batch[start : start + MAX_PACKED]
            name, packed = pack_requests([request for request, _ in part])
            message = ControlMessage(entity, EventRaised(-1, datetime.now(UTC), name, packed))
            try:
                await self.hub.send_control(message)
                self.messages += 1
            except BaseException as error:
                for _, done in part:
                    if not done.done():
                        done.set_exception(error)
                if not isinstance(error, Exception):
                    raise
                continue
            for _, done in part:
                if not done.done():
                    done.set_result(None)


_batchers: weakref.WeakKeyDictionary[TaskHub, SignalBatcher] = weakref.WeakKeyDictionary()


def signals_of(hub: TaskHub) -> SignalBatcher:
    """The hub's signal batcher in this process (clients are made per request: they share it)."""
    batcher = _batchers.get(hub)
    if batcher is None:
        batcher = _batchers[hub] = SignalBatcher(hub)
    return batcher


class EntityClient:
    """The entity half of `DurableOrchestrationClient`."""

    _hub: TaskHub

    async def signal_entity(
        self,
        entityId: EntityId | str,
        operation_name: str,
        operation_input: Any = None,
        task_hub_name: str | None = None,
        connection_name: str | None = None,
    ) -> None:
        """Send operation `operation_name` to an entity (one-way; it is created if new).

        Signals this process sends to one entity at once (in one turn of the event loop)
        share one queue message."""
        entity = str(as_entity_id(entityId))
        validate_instance_id(entity)
        validate_event_name(operation_name)
        request = OperationRequest(
            id=uuid.uuid4().hex,
            operation=operation_name,
            input=serialization.dumps(operation_input),
            sent_at=datetime.now(UTC),
        )
        await signals_of(self._hub).send(entity, request.to_json())

    async def read_entity_state(
        self,
        entityId: EntityId | str,
        task_hub_name: str | None = None,
        connection_name: str | None = None,
    ) -> EntityStateResponse:
        """Whether the entity exists, and its state (as its last committed batch left it)."""
        entity = str(as_entity_id(entityId))
        state = await self._hub.read_state(validate_instance_id(entity))
        if state is None:
            return EntityStateResponse(False, None)
        snapshot = await EntityStore(self._hub).snapshot_of(state)
        return EntityStateResponse(snapshot.exists, serialization.loads(snapshot.state))

    async def list_entities(
        self,
        entity_name: str | None = None,
        page_size: int | None = None,
        continuation_token: Any = None,
        *,
        fetch_state: bool = True,
    ) -> tuple[list[EntityMetadata], Any]:
        """One page of the hub's entities (of one name, or all) and the next page's token."""
        if entity_name is not None:
            validate_function_name(entity_name, "Entity name")
        store = EntityStore(self._hub)
        states, token = await store.list_states(entity_name, page_size, continuation_token)
        found = []
        for state in states:
            snapshot = await store.snapshot_of(state)
            if snapshot.is_empty:
                continue
            found.append(
                EntityMetadata(
                    entity_id_of(state.instance_id),
                    state.updated_at,
                    serialization.loads(snapshot.state) if fetch_state else None,
                    len(snapshot.early),
                )
            )
        return found, token

    async def clean_entity_storage(self, remove_empty_entities: bool = True) -> int:
        """Delete the storage of entities that no longer exist (deleted, nothing waiting);
        how many were removed."""
        removed = 0
        store = EntityStore(self._hub)
        token = None
        while remove_empty_entities:
            states, token = await store.list_states(None, 1000, token)
            for state in states:
                if (await store.snapshot_of(state)).is_empty:
                    removed += int(await self._hub.purge(state.instance_id))
            if token is None:
                break
        return removed
