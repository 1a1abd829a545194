"""An orchestration execution's requests to entities, pure: what each one carries, and which
a repair sends again.

Each request to an entity gets the next position in this execution's stream to that entity
(the entity runs them in that order) and the id of the message that carries it (see
`core.outbox`): replay rebuilds both, so a request sent again is the same request.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from orchestration.core.actions import Action, SendEvent
from orchestration.core.entities import ENTITY_OPERATION, REORDER_WINDOW, OperationRequest
from orchestration.core.tasks import EntityCallTask, TaskState


class EntityRequests:
    """The requests one execution of an orchestration sends to entities."""

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        # per entity: the next position and the time of the last request
        self._positions: dict[str, tuple[int, datetime]] = {}
        # by action id: the request's action and when it was sent
        self._sent: dict[int, tuple[SendEvent, datetime]] = {}
        self._calls: dict[int, EntityCallTask] = {}

    def request_id(self, execution_id: str | None, action_id: int) -> str:
        return f"{self.instance_id}:{execution_id}:event:{action_id}"

    def send(
        self,
        action_id: int,
        execution_id: str | None,
        entity: str,
        operation: str,
        encoded_input: str | None,
        call: bool,
        now: datetime,
    ) -> SendEvent:
        """The action that sends one request (a call's answer comes back to this execution)."""
        position, previous_at = self._positions.get(entity, (0, None))
        self._positions[entity] = (position + 1, now)
        request = OperationRequest(
            id=self.request_id(execution_id, action_id),
            operation=operation,
            input=encoded_input,
            signal=not call,
            reply_to=self.instance_id if call else None,
            reply_execution=execution_id if call else None,
            sender=f"{self.instance_id}:{execution_id}",
            position=position,
            sent_at=now,
            previous_at=previous_at,
        )
        action = SendEvent(action_id, entity, ENTITY_OPERATION, request.to_json())
        self._sent[action_id] = (action, now)
        return action

    def awaits(self, action_id: int, task: EntityCallTask) -> None:
        """`task` waits for the answer to call `action_id`."""
        self._calls[action_id] = task

    def to_resend(self, now: datetime, window: timedelta = REORDER_WINDOW) -> list[Action]:
        """What a repair sends again: the requests of the last `window` whose sending may
        have been cut short (signals, and calls not yet answered), marked as possible copies
        (the entity looks each up before running it)."""
        resend: list[Action] = []
        for action_id, (action, sent_at) in sorted(self._sent.items()):
            if sent_at < now - window:
                continue
            call = self._calls.get(action_id)
            if call is not None and call.state is not TaskState.RUNNING:
                continue  # answered
            request = OperationRequest.from_json(action.input).as_possible_duplicate()
            resend.append(SendEvent(action.id, action.instance_id, action.name, request.to_json()))
        return resend
