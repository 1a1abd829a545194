"""The engine's queue and timer functions: what an app registers to run orchestrations.

Each is an ordinary Azure Functions trigger (queue or timer), so the same app runs on our
local host and on Azure. A message that is not the engine's (corrupt, foreign, or from an
incompatible version) goes to the queue's poison queue at once, with the reason logged, so it
never blocks or crashes a worker.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func

from orchestration.core import serialization
from orchestration.core.history import FailureDetails, TaskFailed
from orchestration.functions.engine import Engine
from orchestration.storage.hub import InstanceExistsError, TaskHub
from orchestration.storage.messages import (
    MAX_BATCH,
    ActivityBatch,
    ActivityMessage,
    ControlMessage,
    EngineMessage,
    MalformedMessageError,
    activities_of,
    raw_json,
)
from orchestration.storage.names import (
    InvalidNameError,
    odata_datetime,
    validate_function_name,
    validate_instance_id,
)

log = logging.getLogger("orchestration.triggers")

TIMER_HORIZON = timedelta(days=6)


async def _poison(hub: TaskHub, queue: str, body: bytes, reason: str) -> None:
    log.error("moving a message to %s-poison: %s", queue, reason, extra={"event": "poison"})
    poison = f"{queue}-poison"
    await hub.queues.create_queue(poison)
    envelope = {"reason": reason, "body": body.decode("utf-8", errors="replace")}
    await hub.queues.send(poison, json.dumps(envelope))


async def _decode(
    hub: TaskHub,
    queue: str,
    body: bytes,
    kind: type[ControlMessage] | tuple[type[ActivityMessage], type[ActivityBatch]],
) -> EngineMessage | None:
    """The engine message in `body`, or None after moving a bad one to the poison queue."""
    try:
        decoded = await hub.decode_message(body)
        if not isinstance(decoded, kind):
            raise MalformedMessageError(f"a {type(decoded).__name__} on the {queue} queue")
        if isinstance(decoded, ActivityBatch) and len(decoded.activities) > MAX_BATCH:
            raise MalformedMessageError(f"a batch of more than {MAX_BATCH} activities")
        validate_instance_id(decoded.instance_id)
    except (MalformedMessageError, InvalidNameError) as error:
        await _poison(hub, queue, body, str(error))
        return None
    return decoded


async def on_control_message(engine: Engine, message: func.QueueMessage) -> None:
    runtime = await engine.runtime()
    body = message.get_body()
    queue = runtime.hub.names.control_queue
    decoded = await _decode(runtime.hub, queue, body, ControlMessage)
    if not isinstance(decoded, ControlMessage):
        return
    attempts = message.dequeue_count or 1
    if attempts >= engine.settings.max_dequeue_count:
        # Earlier attempts crashed or timed out; running the step again may crash again.
        reason = (
            f"A message for this instance could not be processed in {attempts} attempts (the "
            f"worker crashed, timed out or failed each time); it was moved to {queue}-poison."
        )
        await _poison(runtime.hub, queue, body, reason)
        failure = runtime.orchestrators.failure_of_blocked(decoded.instance_id) or FailureDetails(
            "PoisonMessageError", reason
        )
        await runtime.orchestrators.fail_instance(decoded.instance_id, failure)
        return
    await runtime.orchestrators.handle(decoded, attempts)


async def on_work_item(engine: Engine, message: func.QueueMessage) -> None:
    runtime = await engine.runtime()
    body = message.get_body()
    queue = runtime.hub.names.work_item_queue
    decoded = await _decode(runtime.hub, queue, body, (ActivityMessage, ActivityBatch))
    if not isinstance(decoded, (ActivityMessage, ActivityBatch)):
        return
    attempts = message.dequeue_count or 1
    if attempts >= engine.settings.max_dequeue_count:
        names = ", ".join(sorted({repr(a.name) for a in activities_of(decoded)}))
        reason = (
            f"Activity {names} did not complete in {attempts} attempts (its worker "
            f"crashed, timed out or failed each time); the work item was moved to "
            f"{queue}-poison."
        )
        await _poison(runtime.hub, queue, body, reason)
        blocked = runtime.orchestrators.failure_of_blocked(decoded.instance_id)
        if blocked is not None:
            # Its result was delivered each time; the orchestrator's step blocked on it.
            await runtime.orchestrators.fail_instance(decoded.instance_id, blocked)
            return
        poisoned = FailureDetails("PoisonMessageError", reason)
        for activity in activities_of(decoded):
            failed = TaskFailed(-1, datetime.now(UTC), activity.task_id, poisoned)
            await runtime.activities.report(activity, failed)
        return
    await runtime.activities.handle_item(decoded, attempts)


def parse_start_request(data: Any) -> tuple[str, Any, str | None]:
    """(name, input, instance id) of a starts-queue message, or ValueError saying why not."""
    if not isinstance(data, dict):
        raise ValueError("a start message must be a JSON object")
    name = data.get("name")
    validate_function_name(name, "Orchestrator name")
    instance_id = data.get("instanceId")
    if instance_id is not None:
        validate_instance_id(instance_id)
    return str(name), data.get("input"), instance_id


async def on_start_message(engine: Engine, message: func.QueueMessage) -> None:
    """`{"name", "input", "instanceId"?}` from any producer starts an orchestration."""
    runtime = await engine.runtime()
    body = message.get_body()
    queue = runtime.hub.names.starts_queue
    try:
        name, input_value, instance_id = parse_start_request(raw_json(body))
        if name not in engine.registry.orchestrators:
            known = engine.registry.describe_orchestrators()
            raise ValueError(f"no orchestrator named {name!r}; known: {known}")
        encoded = serialization.dumps(input_value)
    except (MalformedMessageError, ValueError, TypeError) as error:
        await _poison(runtime.hub, queue, body, str(error))
        return
    try:
        await runtime.hub.create_instance(
            name,
            instance_id or uuid.uuid4().hex,
            encoded,
            now=datetime.now(UTC),
            execution_id=uuid.uuid4().hex,
            message_id=f"start:{message.id}" if message.id else None,
        )
    except InstanceExistsError as error:
        await _poison(runtime.hub, queue, body, str(error))


async def on_timer_sweep(engine: Engine) -> None:
    """Queue far timers that came within reach; wake instances that look stuck."""
    runtime = await engine.runtime()
    await sweep(runtime.hub, engine.settings.repair_after, datetime.now(UTC))


async def sweep(hub: TaskHub, repair_after: timedelta, now: datetime) -> None:
    """The timer sweeper's work at time `now` (a parameter, so tests can move the clock)."""
    for row, timer in await hub.due_far_timers(now + TIMER_HORIZON):
        fire_at = row["FireAt"]
        await hub.send_control(timer, fire_at - now)
        await hub.delete_far_timer(row)
    cutoff = now - repair_after
    stale = (
        f"(RuntimeStatus eq 'Running' or RuntimeStatus eq 'Pending') and "
        f"(LastUpdatedTime lt {odata_datetime(cutoff)} or WakeAt lt {odata_datetime(now)})"
    )
    async for state in hub.iterate_states(stale):
        if state.next_repair_at is not None and state.next_repair_at > now:
            continue
        # Space repairs out (5 min, 10, 20, ...): an instance waiting days for an event is
        # quiet, not stuck, and each repair may run an open activity once more.
        wait = repair_after * (2 ** min(state.repairs, 10))
        if not await hub.mark_repair(state, now + wait):
            continue  # a worker committed meanwhile: it is not stuck
        log.info(
            "waking a quiet instance (repair %d)",
            state.repairs + 1,
            extra={"instance_id": state.instance_id, "event": "repair"},
        )
        await hub.send_control(ControlMessage(state.instance_id, None, None))
