"""The task hub at a glance, and its poison queues: what the dashboard's overview and
poison pages show, as management API routes any script can call with a key.

Below `/{routePrefix}/`:

    GET    durabletask/hub                                  instances by status, queues,
                                                            recent failures, orchestrators
    GET    durabletask/registry                             registered orchestrators, ...
    GET    durabletask/poison                               the first 32 of each poison queue
    GET    durabletask/poison/{queue}/{messageId}           one message, its whole body
    POST   durabletask/poison/{queue}/{messageId}/requeue   back to its queue
    DELETE durabletask/poison/{queue}/{messageId}           discarded
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import azure.functions as func

from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.functions.management.common import answer, error, guarded, iso, route_value
from orchestration.instance_query import instance_filter
from orchestration.storage import scans
from orchestration.storage.poison import PoisonMessage, PoisonNotFound, PoisonQueues

if TYPE_CHECKING:
    from orchestration.functions.engine import Engine

COUNT_LIMIT = 100_000  # past this the overview says "at least" rather than scan on
RECENT_FAILURES = 10
RECENT_WINDOW = timedelta(hours=24)
BODY_PREVIEW_CHARS = 2_000
Status = OrchestrationRuntimeStatus
_PAST = {"requeue": "requeued", "discard": "discarded"}


async def _poison_queues(engine: Engine) -> PoisonQueues:
    hub = (await engine.runtime()).hub
    return PoisonQueues(hub, engine.settings.max_dequeue_count)


@dataclass
class _Cached:
    at: float
    document: dict[str, Any]


# Per process and task hub: every open dashboard refreshes the overview, and its counts are a
# scan; within this many seconds they share one.
OVERVIEW_TTL = 2.0
_overviews: dict[str, _Cached] = {}


async def _overview(engine: Engine) -> dict[str, Any]:
    hub = (await engine.runtime()).hub
    # Orchestrations only, as the instance list shows them (entities have their own API).
    counts = await scans.count_by_status(hub, limit=COUNT_LIMIT, filter=instance_filter())
    depths = await hub.queue_depths()
    recently_failed = instance_filter(
        runtime_status=[Status.Failed], updated_from=datetime.now(UTC) - RECENT_WINDOW
    )
    failed = await scans.newest(hub, recently_failed, RECENT_FAILURES, scan_limit=COUNT_LIMIT)
    total = counts.total()
    return {
        "taskHub": hub.names.hub,
        "instances": {status.value: counts.get(status.value, 0) for status in Status},
        "totalInstances": total,
        "countsComplete": total < COUNT_LIMIT,
        "queues": [
            {
                "name": queue,
                "messages": depths.get(queue),
                "poisonQueue": f"{queue}-poison",
                "poisonMessages": depths.get(f"{queue}-poison") or 0,
            }
            for queue in hub.engine_queues
        ],
        "recentFailures": [
            {
                "instanceId": state.instance_id,
                "name": state.name,
                "lastUpdatedTime": iso(state.updated_at),
                "failure": state.failure.describe() if state.failure else None,
            }
            for state in failed
        ],
        "orchestrators": sorted(engine.registry.orchestrators),
        "generatedAt": iso(datetime.now(UTC)),
    }


@guarded
async def overview(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    key = engine.settings.hub_name.lower()
    cached = _overviews.get(key)
    if cached is None or time.monotonic() - cached.at > OVERVIEW_TTL:
        cached = _Cached(time.monotonic(), await _overview(engine))
        _overviews[key] = cached
    return answer(cached.document)


@guarded
async def registered(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    """What the app registers (no storage call: the start form and the list's filter)."""
    registry = engine.registry
    return answer(
        {
            "orchestrators": sorted(registry.orchestrators),
            "activities": sorted(registry.activities),
            "entities": sorted(registry.entities),
        }
    )


def _message_json(message: PoisonMessage, whole: bool = False) -> dict[str, Any]:
    body = message.body
    truncated = not whole and len(body) > BODY_PREVIEW_CHARS
    return {
        "id": message.id,
        "queue": message.queue,
        "insertedTime": iso(message.inserted_at),
        "dequeueCount": message.dequeue_count,
        "reason": message.reason,
        "body": body[:BODY_PREVIEW_CHARS] if truncated else body,
        "bodyChars": len(body),
        "bodyTruncated": truncated,
    }


def _unknown_queue(failure: ValueError) -> func.HttpResponse:
    return error(404, "Unknown queue", str(failure))


def _not_found(queue: str, message_id: str) -> func.HttpResponse:
    return error(
        404,
        "Message not found",
        f"No visible message {message_id!r} among the first 32 of {queue}-poison (another "
        f"caller may have requeued or discarded it).",
    )


@guarded
async def list_poison(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    poison = await _poison_queues(engine)
    queues = []
    for queue in poison.hub.engine_queues:
        messages = await poison.peek(queue)
        queues.append(
            {
                "queue": queue,
                "poisonQueue": f"{queue}-poison",
                "messages": await poison.depth(queue),
                "listed": [_message_json(m) for m in messages],
            }
        )
    return answer({"queues": queues})


async def _one(engine: Engine, request: func.HttpRequest, verb: str) -> func.HttpResponse:
    poison = await _poison_queues(engine)
    queue, message_id = route_value(request, "queue"), route_value(request, "messageId")
    try:
        poison.source(queue)
    except ValueError as failure:
        return _unknown_queue(failure)
    try:
        if verb == "get":
            return answer(_message_json(await poison.find(queue, message_id), whole=True))
        if verb == "requeue":
            message = await poison.requeue(queue, message_id)
        else:
            message = await poison.discard(queue, message_id)
    except PoisonNotFound:
        return _not_found(queue, message_id)
    return answer({"id": message.id, "queue": queue, _PAST[verb]: True})


@guarded
async def get_poison(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    return await _one(engine, request, "get")


@guarded
async def requeue_poison(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    return await _one(engine, request, "requeue")


@guarded
async def discard_poison(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    return await _one(engine, request, "discard")
