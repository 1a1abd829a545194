"""How the engine handles a message of one of its queues, wherever it was received.

The Functions triggers (`triggers`) and the burst worker (`burst`) both hand every message
to one `Delivery`: it decodes it, checks its dequeue count, poisons what cannot be processed
(a foreign or corrupt message at once; a message whose attempts all failed at the dequeue
limit, failing its instance or its activities readably) and dispatches the rest to the
workers. So tests that drive the burst worker take the path production takes.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestration.core import serialization
from orchestration.core.entities import is_entity_instance
from orchestration.core.history import FailureDetails, TaskFailed
from orchestration.functions.activity_worker import ActivityWorker
from orchestration.functions.orchestrator import OrchestratorWorker
from orchestration.functions.registry import Registry
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
    validate_function_name,
    validate_instance_id,
)
from orchestration.telemetry import tracing
from orchestration.telemetry.links import SpanRef

log = logging.getLogger("orchestration.delivery")


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


@dataclass
class Delivery:
    """Decode, check, poison or dispatch the messages of one task hub's queues."""

    hub: TaskHub
    registry: Registry
    orchestrators: OrchestratorWorker
    activities: ActivityWorker
    max_dequeue_count: int = 5
    default_version: str | None = None  # host.json defaultVersion, for starts without one

    async def _poison(self, queue: str, body: bytes, reason: str) -> None:
        log.error("moving a message to %s-poison: %s", queue, reason, extra={"event": "poison"})
        await self.hub.poison(queue, body, reason)

    async def _decode(
        self,
        queue: str,
        body: bytes,
        kind: type[ControlMessage] | tuple[type[ActivityMessage], type[ActivityBatch]],
    ) -> EngineMessage | None:
        """The engine message in `body`, or None after moving a bad one to the poison queue."""
        try:
            decoded = await self.hub.decode_message(body)
            if not isinstance(decoded, kind):
                raise MalformedMessageError(f"a {type(decoded).__name__} on the {queue} queue")
            if isinstance(decoded, ActivityBatch) and len(decoded.activities) > MAX_BATCH:
                raise MalformedMessageError(f"a batch of more than {MAX_BATCH} activities")
            validate_instance_id(decoded.instance_id)
        except (MalformedMessageError, InvalidNameError) as error:
            await self._poison(queue, body, str(error))
            return None
        return decoded

    async def control(self, body: bytes, attempts: int) -> None:
        """A control-queue message, delivered for the `attempts`-th time."""
        queue = self.hub.names.control_queue
        decoded = await self._decode(queue, body, ControlMessage)
        if not isinstance(decoded, ControlMessage):
            return
        if attempts >= self.max_dequeue_count:
            # Earlier attempts crashed or timed out; running the step again may crash again.
            reason = (
                f"A message for this instance could not be processed in {attempts} attempts "
                f"(the worker crashed, timed out or failed each time); it was moved to "
                f"{queue}-poison."
            )
            await self._poison(queue, body, reason)
            if is_entity_instance(decoded.instance_id):
                await self.orchestrators.entities.refuse(decoded, attempts, reason)
                return
            failure = self.orchestrators.failure_of_blocked(decoded.instance_id) or (
                FailureDetails("PoisonMessageError", reason)
            )
            await self.orchestrators.fail_instance(decoded.instance_id, failure)
            return
        await self.orchestrators.handle(decoded, attempts)

    async def work_item(self, body: bytes, attempts: int) -> None:
        """A work item (one activity or a batch), delivered for the `attempts`-th time."""
        queue = self.hub.names.work_item_queue
        decoded = await self._decode(queue, body, (ActivityMessage, ActivityBatch))
        if not isinstance(decoded, (ActivityMessage, ActivityBatch)):
            return
        if attempts >= self.max_dequeue_count:
            names = ", ".join(sorted({repr(a.name) for a in activities_of(decoded)}))
            reason = (
                f"Activity {names} did not complete in {attempts} attempts (its worker "
                f"crashed, timed out or failed each time); the work item was moved to "
                f"{queue}-poison."
            )
            await self._poison(queue, body, reason)
            blocked = self.orchestrators.failure_of_blocked(decoded.instance_id)
            if blocked is not None:
                # Its result was delivered each time; the orchestrator's step blocked on it.
                await self.orchestrators.fail_instance(decoded.instance_id, blocked)
                return
            poisoned = FailureDetails("PoisonMessageError", reason)
            for activity in activities_of(decoded):
                failed = TaskFailed(-1, datetime.now(UTC), activity.task_id, poisoned)
                await self.activities.report(activity, failed)
            return
        await self.activities.handle_item(decoded, attempts)

    async def start(self, body: bytes, message_id: str | None) -> None:
        """`{"name", "input", "instanceId"?, "version"?, "traceparent"?}` from any producer
        starts an orchestration (of host.json's defaultVersion when it gives no version)."""
        queue = self.hub.names.starts_queue
        try:
            data = raw_json(body)
            name, input_value, instance_id = parse_start_request(data)
            version = data.get("version")
            if version is not None and not isinstance(version, str):
                raise ValueError("a start message's version must be a string")
            traceparent = data.get("traceparent")
            if traceparent is not None and SpanRef.parse(traceparent) is None:
                raise ValueError("a start message's traceparent must be a W3C traceparent")
            if name not in self.registry.orchestrators:
                known = self.registry.describe_orchestrators()
                raise ValueError(f"no orchestrator named {name!r}; known: {known}")
            encoded = serialization.dumps(input_value)
        except (MalformedMessageError, ValueError, TypeError) as error:
            await self._poison(queue, body, str(error))
            return
        target = instance_id or uuid.uuid4().hex
        # A producer may say where the start belongs in its trace (W3C `traceparent`).
        parent = tracing.context_of(traceparent)
        try:
            with tracing.starting(name, target, parent) as link:
                await self.hub.create_instance(
                    name,
                    target,
                    encoded,
                    now=datetime.now(UTC),
                    version=version or self.default_version,
                    execution_id=uuid.uuid4().hex,
                    message_id=f"start:{message_id}" if message_id else None,
                    trace=link.encode() if link is not None else None,
                )
        except InstanceExistsError as error:
            await self._poison(queue, body, str(error))
