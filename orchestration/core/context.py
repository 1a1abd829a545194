"""The orchestration context: the API an orchestrator function programs against.

Names and meaning follow `azure.durable_functions.DurableOrchestrationContext`, so that an
orchestrator moves over by changing its import line.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from orchestration.core import durable_http, serialization
from orchestration.core.entities import EntityId, as_entity_id
from orchestration.core.function_refs import function_name, output_type
from orchestration.core.tasks import TaskBase, TimerTask, WhenAllTask, WhenAnyTask

if TYPE_CHECKING:
    from orchestration.core.history import HistoryRecord
    from orchestration.core.retry import RetryOptions
    from orchestration.core.runtime import OrchestrationRuntime

_UUID_NAMESPACE = uuid.UUID("6f1f7c57-3c4e-4b59-9d0b-5f2de0c3a1a4")


class ReplaySafeLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger that stays silent while the orchestrator replays history.

    Each message is logged once, when the step that produces it runs for the first time.
    """

    def __init__(self, logger: logging.Logger, context: DurableOrchestrationContext) -> None:
        super().__init__(logger, {})
        self._context = context

    def isEnabledFor(self, level: int) -> bool:
        return not self._context.is_replaying and self.logger.isEnabledFor(level)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = dict(kwargs.get("extra") or {})
        extra.setdefault("instance_id", self._context.instance_id)
        kwargs["extra"] = extra
        return msg, kwargs


class FunctionContext:
    """azure-functions-durable's bag of function-level attributes, set by keyword."""

    def __init__(self, **attributes: Any) -> None:
        for key, value in attributes.items():
            setattr(self, key, value)


class DurableOrchestrationContext:
    """What an orchestrator sees of its instance, and how it schedules durable work."""

    def __init__(self, runtime: OrchestrationRuntime) -> None:
        self._runtime = runtime
        self._uuid_counter = 0
        self._logger: ReplaySafeLogger | None = None

    @classmethod
    def from_json(cls, json_string: str) -> DurableOrchestrationContext:
        """DF's v1 entry point: refused with what to write instead."""
        from orchestration.legacy import refuse_context_from_json

        refuse_context_from_json()

    # -- identity and input ------------------------------------------------------------
    @property
    def instance_id(self) -> str:
        return self._runtime.instance_id

    @property
    def parent_instance_id(self) -> str | None:
        parent = self._runtime.parent
        return parent.instance_id if parent else None

    @property
    def function_name(self) -> str:
        return self._runtime.name

    @property
    def version(self) -> str | None:
        """The orchestration version given at start (None when none was given)."""
        return self._runtime.version

    def is_patched(self, patch_id: str) -> bool:
        """Whether this execution takes the patched path `patch_id` (ours; Temporal's
        `workflow.patched`, Dapr's `is_patched`).

        True when the code reaches it for the first time (a marker is recorded in history);
        on replay, True only if history holds that marker, so instances that ran before the
        patch existed replay down the old path. Decided once per execution (core/patches).
        """
        return self._runtime.is_patched(patch_id)

    @property
    def is_replaying(self) -> bool:
        """True while the orchestrator re-executes steps already recorded in history."""
        return self._runtime.is_replaying

    @property
    def current_utc_datetime(self) -> datetime:
        """The time of the current step, from history: the same at every replay."""
        return self._runtime.current_time

    def get_input(self, expected_type: type | None = None) -> Any:
        """The orchestration's input, decoded from JSON; custom objects rebuilt, as
        `expected_type` (or the trigger's `input_type`) says."""
        resolved = expected_type or self._runtime.input_type
        return serialization.decode(self._runtime.input, resolved)

    # -- durable work ------------------------------------------------------------------
    def call_activity(
        self, name: str | Callable[..., Any], input_: Any = None, expected_type: type | None = None
    ) -> TaskBase:
        """Schedule activity `name` (or the decorated activity function itself); yield the task
        to get its result, rebuilt as `expected_type` or the activity's return annotation."""
        resolved = expected_type or output_type(name)
        activity = function_name(name, "activity")
        task = self._runtime.schedule_activity(activity, serialization.dumps(input_))
        task.expected_type = resolved
        return task

    def call_activity_with_retry(
        self,
        name: str | Callable[..., Any],
        retry_options: RetryOptions,
        input_: Any = None,
        expected_type: type | None = None,
    ) -> TaskBase:
        """Schedule activity `name`, retrying failures as `retry_options` says."""
        resolved = expected_type or output_type(name)
        activity = function_name(name, "activity")
        encoded = serialization.dumps(input_)
        attempt = 0

        def start_attempt() -> TaskBase:
            nonlocal attempt
            attempt += 1
            task = self._runtime.schedule_activity(activity, encoded, attempt)
            task.expected_type = resolved
            return task

        return self._runtime.with_retry(retry_options, start_attempt)

    def call_sub_orchestrator(
        self,
        name: str | Callable[..., Any],
        input_: Any = None,
        instance_id: str | None = None,
        version: str | None = None,
        expected_type: type | None = None,
    ) -> TaskBase:
        """Start orchestrator `name` as a child instance; yield the task to get its output.

        The child gets `version`, or else this worker's host.json `defaultVersion`.
        """
        resolved = expected_type or output_type(name)
        orchestrator = function_name(name, "orchestration")
        task = self._runtime.start_sub_orchestration(
            orchestrator, serialization.dumps(input_), instance_id, version
        )
        task.expected_type = resolved
        return task

    def call_sub_orchestrator_with_retry(
        self,
        name: str | Callable[..., Any],
        retry_options: RetryOptions,
        input_: Any = None,
        instance_id: str | None = None,
        version: str | None = None,
        expected_type: type | None = None,
    ) -> TaskBase:
        """Start a child orchestration, retrying failures as `retry_options` says.

        Each attempt after the first gets its own instance id (the given one with a suffix);
        each gets `version` (else this worker's `defaultVersion`).
        """
        resolved = expected_type or output_type(name)
        orchestrator = function_name(name, "orchestration")
        encoded = serialization.dumps(input_)
        attempt = 0

        def start_attempt() -> TaskBase:
            nonlocal attempt
            attempt += 1
            child_id = instance_id
            if child_id is not None and attempt > 1:
                child_id = f"{child_id}:retry{attempt - 1}"
            task = self._runtime.start_sub_orchestration(orchestrator, encoded, child_id, version)
            task.expected_type = resolved
            return task

        return self._runtime.with_retry(retry_options, start_attempt)

    def call_http(
        self,
        method: str,
        uri: str,
        content: Any = None,
        headers: dict[str, str] | None = None,
        token_source: durable_http.TokenSource | None = None,
        is_raw_str: bool = False,
    ) -> TaskBase:
        """A durable HTTP call; yield the task to get its DurableHttpResponse.

        `content` that is not a str, or a str without `is_raw_str`, is sent JSON-encoded. A
        202 answer with a `Location` is polled with durable timers until the final answer;
        a non-2xx answer is an answer, a request that cannot be sent raises TaskFailedError.
        """
        runtime = self._runtime
        request = durable_http.request_for_call(
            method, uri, content, headers, token_source, is_raw_str
        )
        return durable_http.DurableHttpTask(
            request,
            lambda encoded: runtime.schedule_activity(durable_http.HTTP_ACTIVITY, encoded),
            runtime.create_timer,
            lambda: runtime.current_time,
        )

    def create_timer(self, fire_at: datetime) -> TimerTask:
        """A durable timer that fires at `fire_at` (UTC); it can be cancelled."""
        return self._runtime.create_timer(fire_at)

    def wait_for_external_event(self, name: str, expected_type: type | None = None) -> TaskBase:
        """Wait for an event raised to this instance; its data rebuilt as `expected_type`.

        An event that arrived before the wait is buffered and served at once; several waits on
        one name are served in arrival order. Names are case-insensitive.
        """
        return self._runtime.wait_for_event(name, expected_type)

    def send_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Raise event `name` on another instance (fire and forget)."""
        self._runtime.send_event(instance_id, name, serialization.dumps(data))

    def call_entity(
        self,
        entityId: EntityId | str,
        operationName: str,
        operationInput: Any = None,
        expected_type: type | None = None,
    ) -> TaskBase:
        """Call an entity's operation; yield the task to get its result (a failed operation
        raises TaskFailedError at the yield)."""
        entity = str(as_entity_id(entityId))
        task = self._runtime.send_to_entity(
            entity, operationName, serialization.dumps(operationInput), call=True
        )
        assert task is not None
        task.expected_type = expected_type
        return task

    def signal_entity(
        self, entityId: EntityId | str, operationName: str, operationInput: Any = None
    ) -> None:
        """Signal an entity's operation (one-way: nothing to wait for)."""
        entity = str(as_entity_id(entityId))
        self._runtime.send_to_entity(
            entity, operationName, serialization.dumps(operationInput), call=False
        )

    def task_all(self, activities: Sequence[TaskBase]) -> TaskBase:
        """A task that succeeds with all results in order, or fails with the first failure."""
        return WhenAllTask(activities)

    def task_any(self, activities: Sequence[TaskBase]) -> TaskBase:
        """A task that succeeds with the first of `activities` to complete."""
        return WhenAnyTask(activities)

    def continue_as_new(self, input_: Any, *, preserve_unprocessed_events: bool = False) -> None:
        """Restart this instance with `input_` and a fresh history when the orchestrator returns.

        With `preserve_unprocessed_events`, external events that arrived but were not waited
        for are delivered to the new execution.
        """
        self._runtime.request_continue_as_new(
            serialization.dumps(input_), preserve_unprocessed_events
        )

    @property
    def will_continue_as_new(self) -> bool:
        return self._runtime.continue_as_new_requested

    def set_custom_status(self, status: Any) -> None:
        """A JSON-serializable value shown in the instance's status as `customStatus`."""
        self._runtime.custom_status = serialization.dumps(status)

    @property
    def custom_status(self) -> Any:
        return serialization.decode(self._runtime.custom_status)

    @property
    def histories(self) -> list[HistoryRecord]:
        """The history events this execution has replayed and applied so far, in order, as
        DF's `HistoryEvent`s show them (type, id, time, name, played): payloads left out."""
        played = self._runtime.played
        return [
            dataclasses.replace(record, is_played=True) if index < played else record
            for index, record in enumerate(self._runtime.history)
        ]

    @property
    def function_context(self) -> FunctionContext:
        """Function-level attributes the orchestration itself does not use (as DF's)."""
        return FunctionContext(
            function_name=self._runtime.name,
            instance_id=self._runtime.instance_id,
            execution_id=self._runtime.execution_id,
        )

    # -- determinism helpers -----------------------------------------------------------
    def new_guid(self) -> uuid.UUID:
        """A UUID that is the same at every replay of this step."""
        name = (
            f"{self._runtime.instance_id}|{self._runtime.execution_id or ''}|"
            f"{self._runtime.current_time.isoformat()}|{self._uuid_counter}"
        )
        self._uuid_counter += 1
        return uuid.uuid5(_UUID_NAMESPACE, name)

    def new_uuid(self) -> str:
        """`new_guid()` as a string, as azure-functions-durable's `new_uuid` returns."""
        return str(self.new_guid())

    def create_replay_safe_logger(self, logger: logging.Logger) -> ReplaySafeLogger:
        """Wrap `logger` so that it logs nothing while the orchestrator replays."""
        return ReplaySafeLogger(logger, self)

    @property
    def logger(self) -> ReplaySafeLogger:
        """A replay-safe logger named after the orchestrator."""
        if self._logger is None:
            base = logging.getLogger(f"orchestration.orchestrator.{self._runtime.name}")
            self._logger = ReplaySafeLogger(base, self)
        return self._logger
