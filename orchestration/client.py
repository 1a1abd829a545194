"""The durable client: start, query and steer orchestration instances.

Signatures and JSON shapes follow `azure.durable_functions.DurableOrchestrationClient`, so
starter functions move over unchanged. The management URLs it hands out point at the app's
own management API (`/{routePrefix}/durabletask/instances/...`), served by the engine's HTTP
functions: the Functions host reserves `admin/` and extensions own `runtime/webhooks/`.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import azure.functions as func

from orchestration.core import serialization
from orchestration.core.entities import is_entity_instance
from orchestration.core.errors import non_determinism_parts
from orchestration.core.history import (
    EventRaised,
    ExecutionResumed,
    ExecutionSuspended,
    ExecutionTerminated,
    HistoryEvent,
    event_to_dict,
)
from orchestration.core.rewind import rewound
from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.entity_client import EntityClient, EntityMetadata, EntityStateResponse
from orchestration.instance_query import build_filter, instance_filter
from orchestration.legacy import refuse_client_binding_string
from orchestration.storage.hub import InstanceExistsError, InstanceState, TaskHub
from orchestration.storage.links import InstanceLinks
from orchestration.storage.mailbox import Mailbox
from orchestration.storage.messages import ControlMessage
from orchestration.storage.names import (
    InvalidNameError,
    validate_event_name,
    validate_function_name,
    validate_instance_id,
)
from orchestration.telemetry import tracing
from orchestration.telemetry.links import TraceLink

__all__ = [
    "DurableOrchestrationClient",
    "DurableOrchestrationStatus",
    "EntityMetadata",
    "EntityStateResponse",
    "InstanceExistsError",
    "InstanceNotFoundError",
    "InvalidNameError",
    "PurgeHistoryResult",
]


INSTANCE_ROUTE = "durabletask/instances"  # the management API, behind keys
LINK_ROUTE = "durabletask/links"  # the same for one instance, behind its link code

# Runs a new instance's first step in this process: given the Pending instance (not yet
# written) and its start message; returns once the step's commit has created the instance.
LocalStart = Callable[[InstanceState, ControlMessage], Awaitable[None]]


class InstanceNotFoundError(LookupError):
    """No instance with this id exists in the task hub."""


class InstanceStateError(RuntimeError):
    """The operation does not apply to the instance in its current status (e.g. finished)."""


_EPOCH = datetime.fromtimestamp(0, UTC)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class DurableOrchestrationStatus:
    """An instance's status, as Durable Functions reports it."""

    name: str
    instance_id: str
    runtime_status: OrchestrationRuntimeStatus
    created_time: datetime
    last_updated_time: datetime
    input_: Any = None
    output: Any = None
    custom_status: Any = None
    history: list[dict[str, Any]] | None = None
    failure: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "instanceId": self.instance_id,
            "runtimeStatus": self.runtime_status.value,
            "input": self.input_,
            "customStatus": self.custom_status,
            "output": self.output,
            "createdTime": _iso(self.created_time),
            "lastUpdatedTime": _iso(self.last_updated_time),
        }
        if self.history is not None:
            data["historyEvents"] = self.history
        if self.failure is not None and self.runtime_status is OrchestrationRuntimeStatus.Failed:
            # Ours beside DF's string output: the type, message and stack of the failure.
            details = dict(self.failure)
            is_ours = details.get("errorType") == "NonDeterminismError"
            parts = non_determinism_parts(str(details.get("message", ""))) if is_ours else None
            if parts is not None:
                details["nonDeterminism"] = parts
            data["failureDetails"] = details
        return data

    @classmethod
    def from_json(cls, json_obj: dict[str, Any] | str) -> DurableOrchestrationStatus:
        """A status from its JSON form (`to_json`'s, or the management API's answer)."""
        data = serialization.loads(json_obj) if isinstance(json_obj, str) else json_obj
        if not isinstance(data, dict):
            raise ValueError("a status's JSON form is an object")

        def when(key: str) -> datetime:
            text = data.get(key)
            return datetime.fromisoformat(text) if isinstance(text, str) else _EPOCH

        return cls(
            name=str(data.get("name") or ""),
            instance_id=str(data.get("instanceId") or ""),
            runtime_status=OrchestrationRuntimeStatus(data.get("runtimeStatus") or "Pending"),
            created_time=when("createdTime"),
            last_updated_time=when("lastUpdatedTime"),
            input_=data.get("input"),
            output=data.get("output"),
            custom_status=data.get("customStatus"),
            history=data.get("historyEvents", data.get("history")),
            failure=data.get("failureDetails"),
        )


@dataclass
class PurgeHistoryResult:
    instances_deleted: int

    def to_json(self) -> dict[str, Any]:
        return {"instancesDeleted": self.instances_deleted}

    @classmethod
    def from_json(cls, json_obj: dict[str, Any]) -> PurgeHistoryResult:
        return cls(int(json_obj["instancesDeleted"]))


@dataclass
class ManagementUrls:
    """Where the management API of an app lives, and the key its URLs carry.

    Without a key (`code` None), a client that has the hub's instance links hands out link
    URLs, each good for its own instance only. `keyless` ignores any key the request carried
    (a request that came in through a link).
    """

    base_url: str = "http://localhost:7071/api"
    code: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    keyless: bool = False


_HISTORY_PAYLOAD_FIELDS = {"input", "result"}


def _history_entry(event: HistoryEvent, with_output: bool) -> dict[str, Any]:
    """A history event in the shape of Durable Functions' `historyEvents` entries."""
    data = event_to_dict(event)
    entry: dict[str, Any] = {"EventType": data.pop("eventType")}
    for key, value in data.items():
        if key in _HISTORY_PAYLOAD_FIELDS:
            if not with_output:
                continue
            value = serialization.loads(value) if isinstance(value, str) else value
        name = key[0].upper() + key[1:]
        entry[name] = value
    return entry


class DurableOrchestrationClient(EntityClient):
    """Starts and manages orchestration instances (and entities) of one task hub."""

    def __init__(
        self,
        hub: TaskHub,
        urls: ManagementUrls | None = None,
        *,
        local_start: LocalStart | None = None,
        links: InstanceLinks | None = None,
        mailbox: Mailbox | None = None,
        default_version: str | None = None,
    ) -> None:
        """`local_start` lets an engine in this process run a new instance's first step at
        once: it is given the Pending instance (not yet written) and its start message, and
        returns once that step's commit has created the instance. `links` makes the
        management URLs of a request without a key link URLs (see `InstanceLinks`). `mailbox`
        is the engine's in this process: its commits then wake waits without a read."""
        if isinstance(hub, str):
            refuse_client_binding_string()
        self._hub = hub
        self.task_hub_name = hub.names.hub
        self.urls = urls or ManagementUrls()
        self._local_start = local_start
        self._links = links
        self._mailbox = mailbox or Mailbox()
        # host.json's defaultVersion: the version of instances started without one.
        self._default_version = default_version
        # Executions this client started in its engine's process, by instance id.
        self._started_here: OrderedDict[str, str] = OrderedDict()

    # -- starting -----------------------------------------------------------------------
    async def start_new(
        self,
        orchestration_function_name: str,
        instance_id: str | None = None,
        client_input: Any = None,
        version: str | None = None,
    ) -> str:
        """Start an instance of `orchestration_function_name`; return its instance id."""
        validate_function_name(orchestration_function_name, "Orchestrator name")
        generated = instance_id is None
        instance_id = instance_id or uuid.uuid4().hex
        validate_instance_id(instance_id)
        if is_entity_instance(instance_id):
            raise InvalidNameError(
                f"Instance id {instance_id!r} is an entity's (@name@key): an orchestration's "
                f"id must not have that form."
            )
        input_text = serialization.dumps(client_input)
        with tracing.starting(orchestration_function_name, instance_id) as link:
            await self._start(
                orchestration_function_name, instance_id, input_text, version, generated, link
            )
        return instance_id

    async def _start(
        self,
        name: str,
        instance_id: str,
        input_text: str | None,
        version: str | None,
        generated: bool,
        link: TraceLink | None,
    ) -> None:
        execution_id, message_id = uuid.uuid4().hex, uuid.uuid4().hex
        instance: dict[str, Any] = {
            "name": name,
            "instance_id": instance_id,
            "input_text": input_text,
            "now": datetime.now(UTC),
            "version": version if version is not None else self._default_version,
            "execution_id": execution_id,
            "message_id": message_id,
            "trace": link.encode() if link is not None else None,
        }
        if self._local_start is None:
            await self._hub.create_instance(**instance)
            return
        # A generated id is free: no read. The first step's commit writes the instance.
        state = await self._hub.new_instance(**instance, exists=False if generated else None)
        await self._local_start(state, self._hub.start_message(state, message_id))
        self._started_here[instance_id] = execution_id
        if len(self._started_here) > 1000:
            self._started_here.popitem(last=False)

    # -- status -------------------------------------------------------------------------
    async def _status(
        self,
        state: InstanceState,
        show_history: bool = False,
        show_history_output: bool = False,
        show_input: bool = True,
    ) -> DurableOrchestrationStatus:
        hub = self._hub
        input_text = await hub.resolve(state.input) if show_input else None
        output_text = await hub.resolve(state.output)
        custom_text = await hub.resolve(state.custom_status)
        output: Any = serialization.loads(output_text)
        if state.failure is not None and state.status is OrchestrationRuntimeStatus.Failed:
            failure = state.failure
            output = f"{failure.error_type}: {failure.message}"
        history = None
        if show_history:
            events = await hub.read_history(state)
            history = [_history_entry(e, show_history_output) for e in events]
        return DurableOrchestrationStatus(
            name=state.name,
            instance_id=state.instance_id,
            runtime_status=state.status,
            created_time=state.created_at,
            last_updated_time=state.updated_at,
            input_=serialization.loads(input_text),
            output=output,
            custom_status=serialization.loads(custom_text),
            history=history,
            failure=state.failure.to_dict() if state.failure else None,
        )

    async def status_of(
        self, state: InstanceState, *, show_input: bool = True
    ) -> DurableOrchestrationStatus:
        """The status of an instance state read elsewhere (e.g. a page of a query)."""
        return await self._status(state, show_input=show_input)

    async def get_status(
        self,
        instance_id: str,
        show_history: bool = False,
        show_history_output: bool = False,
        show_input: bool = False,
    ) -> DurableOrchestrationStatus | None:
        """The instance's status, or None when no such instance exists."""
        state = await self._hub.read_state(validate_instance_id(instance_id))
        if state is None:
            return None
        return await self._status(state, show_history, show_history_output, show_input)

    async def get_status_all(self) -> list[DurableOrchestrationStatus]:
        return await self.get_status_by()

    async def get_status_by(
        self,
        created_time_from: datetime | None = None,
        created_time_to: datetime | None = None,
        runtime_status: list[OrchestrationRuntimeStatus] | None = None,
        instance_id_prefix: str | None = None,
    ) -> list[DurableOrchestrationStatus]:
        """The statuses of the instances created in the time range, in one of the runtime
        statuses, whose id starts with `instance_id_prefix` (each filter when given)."""
        statuses = []
        async for state in self._hub.iterate_states(
            instance_filter(created_time_from, created_time_to, runtime_status, instance_id_prefix)
        ):
            statuses.append(await self._status(state, show_input=True))
        return statuses

    # -- steering -----------------------------------------------------------------------
    async def _require(self, instance_id: str) -> InstanceState:
        state = await self._hub.read_state(validate_instance_id(instance_id))
        if state is None:
            raise InstanceNotFoundError(f"No instance with id {instance_id!r} exists.")
        return state

    async def _send(self, state: InstanceState, event: HistoryEvent) -> None:
        await self._hub.send_control(ControlMessage(state.instance_id, event, None))

    async def raise_event(
        self,
        instance_id: str,
        event_name: str,
        event_data: Any = None,
        task_hub_name: str | None = None,
        connection_name: str | None = None,
    ) -> None:
        """Send event `event_name` to a running instance."""
        validate_event_name(event_name)
        state = await self._require(instance_id)
        if state.status.is_terminal:
            raise InstanceStateError(
                f"Instance {instance_id!r} is {state.status.value}; it takes no more events."
            )
        now = datetime.now(UTC)
        await self._send(state, EventRaised(-1, now, event_name, serialization.dumps(event_data)))

    async def terminate(self, instance_id: str, reason: str | None = None) -> None:
        state = await self._require(instance_id)
        if state.status.is_terminal:
            raise InstanceStateError(f"Instance {instance_id!r} is already {state.status.value}.")
        await self._send(state, ExecutionTerminated(-1, datetime.now(UTC), reason))

    async def suspend(self, instance_id: str, reason: str | None = None) -> None:
        state = await self._require(instance_id)
        if state.status.is_terminal:
            raise InstanceStateError(f"Instance {instance_id!r} is already {state.status.value}.")
        await self._send(state, ExecutionSuspended(-1, datetime.now(UTC), reason))

    async def resume(self, instance_id: str, reason: str | None = None) -> None:
        state = await self._require(instance_id)
        if state.status.is_terminal:
            raise InstanceStateError(f"Instance {instance_id!r} is already {state.status.value}.")
        await self._send(state, ExecutionResumed(-1, datetime.now(UTC), reason))

    async def rewind(
        self,
        instance_id: str,
        reason: str | None = None,
        task_hub_name: str | None = None,
        connection_name: str | None = None,
    ) -> None:
        """Return a Failed instance to Running, retrying the failures that ended it.

        The failures of the instance's last step (the failed activities or sub-orchestrations
        and the failure record) are taken out of history; replay then finds that work open
        again, and the engine sends it once more.
        """
        state = await self._require(instance_id)
        if state.status is not OrchestrationRuntimeStatus.Failed:
            raise InstanceStateError(
                f"Only a Failed instance can be rewound; {instance_id!r} is {state.status.value}."
            )
        kept = rewound(await self._hub.read_history(state))
        link = TraceLink.decode(state.trace)
        after = replace(
            state,
            status=OrchestrationRuntimeStatus.Running,
            output=None,
            failure=None,
            updated_at=datetime.now(UTC),
            # The failed run's span is written: the rewound run gets a span of its own.
            trace=link.next_execution().encode() if link is not None else state.trace,
        )
        await self._hub.rewrite_history(state, after, kept)
        await self._hub.send_control(ControlMessage(state.instance_id, None, None))

    async def restart(self, instance_id: str, restart_with_new_instance_id: bool = True) -> str:
        """Start the instance's orchestrator again, with its original input and version;
        return the new instance's id (a new one, or the same id when told so).

        InstanceNotFoundError when no such instance exists; InstanceExistsError when the
        same id is asked for and the instance is still running.
        """
        state = await self._require(instance_id)
        client_input = serialization.loads(await self._hub.resolve(state.input))
        target = uuid.uuid4().hex if restart_with_new_instance_id else state.instance_id
        return await self.start_new(state.name, target, client_input, state.version)

    async def purge_instance_history(self, instance_id: str) -> PurgeHistoryResult:
        deleted = await self._hub.purge(validate_instance_id(instance_id))
        return PurgeHistoryResult(1 if deleted else 0)

    async def purge_instance_history_by(
        self,
        created_time_from: datetime | None = None,
        created_time_to: datetime | None = None,
        runtime_status: list[OrchestrationRuntimeStatus] | None = None,
    ) -> PurgeHistoryResult:
        ids = [
            state.instance_id
            async for state in self._hub.iterate_states(
                build_filter(created_time_from, created_time_to, runtime_status)
            )
        ]
        deleted = 0
        for instance_id in ids:
            deleted += int(await self._hub.purge(instance_id))
        return PurgeHistoryResult(deleted)

    async def wait_for_completion(
        self, instance_id: str, timeout_in_milliseconds: int = 10_000, poll_ms: int = 100
    ) -> DurableOrchestrationStatus | None:
        """Wait until the instance finishes or the timeout passes; its last status.

        A commit made by this process wakes the wait at once (no storage read); commits made
        elsewhere are seen by reading the state every `poll_ms`. The first read comes after a
        random part of that interval: waits begun together (a burst of starts) would
        otherwise read storage all at once, every interval.
        """
        validate_instance_id(instance_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_in_milliseconds / 1000
        committed = self._mailbox.watch(instance_id)  # before the read: no commit slips between
        try:
            # A state this process committed saves a read: an unfinished one (polling or a
            # commit will move on from it), or the end of an execution this client started.
            # Another finished one may be an older execution's, so storage is asked.
            state = self._mailbox.committed_here(instance_id)
            if state is None or (
                state.status.is_terminal
                and self._started_here.get(instance_id) != state.execution_id
            ):
                state = await self._hub.read_state(instance_id)
            interval = poll_ms / 1000 * random.uniform(0.05, 1.0)
            put_off = 0.0
            while state is not None and not state.status.is_terminal:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                done, _ = await asyncio.wait([committed], timeout=min(interval, remaining))
                if done:
                    state = committed.result()
                    committed = self._mailbox.watch(instance_id)
                    interval, put_off = poll_ms / 1000, 0.0
                    continue
                # This read only looks for commits made elsewhere: it gives way to timers
                # this process is about to fire (once, by at most 20 ms), unless it is the
                # last read before the timeout.
                now = loop.time()
                quiet = 0.0 if put_off else self._mailbox.timer_windows.quiet_delay(now)
                if quiet > 0 and now + quiet < deadline:
                    interval = put_off = quiet
                    continue
                state = await self._hub.read_state(instance_id)
                # The next read keeps the wait's own schedule: waits put off together must
                # not read together from then on.
                interval, put_off = max(poll_ms / 1000 - put_off, 0.0), 0.0
        finally:
            self._mailbox.unwatch(instance_id, committed)
        return None if state is None else await self._status(state, show_input=False)

    # -- HTTP helpers -------------------------------------------------------------------
    def _urls_for(self, request: func.HttpRequest | None) -> ManagementUrls:
        if request is None:
            return self.urls
        parts = urlsplit(request.url)
        base = f"{parts.scheme}://{parts.netloc}"
        prefix = self.urls.base_url.split("://", 1)[-1].split("/", 1)
        route_prefix = prefix[1] if len(prefix) > 1 else ""
        code = None
        if not self.urls.keyless:
            code = request.headers.get("x-functions-key") or request.params.get("code")
        base_url = f"{base}/{route_prefix}".rstrip("/")
        return ManagementUrls(base_url, code or self.urls.code, keyless=self.urls.keyless)

    def create_http_management_payload(
        self, instance_id: str, request: func.HttpRequest | None = None
    ) -> dict[str, str]:
        """DF's management URLs of an instance (see `get_client_response_links`)."""
        return self.get_client_response_links(request, instance_id)

    def get_client_response_links(
        self, request: func.HttpRequest | None, instance_id: str
    ) -> dict[str, str]:
        """DF's management URLs of an instance, on the request's origin (the app's
        management API below the route prefix, wherever the request came in): they carry
        the request's key, or, for a request without one, the instance's link code (good
        for this instance only)."""
        urls = self._urls_for(request)
        quoted = quote(instance_id, safe="")
        code = urls.code
        if code is None and self._links is not None:
            root = f"{urls.base_url}/{LINK_ROUTE}/{quoted}"
            code = self._links.code(instance_id)
        else:
            root = f"{urls.base_url}/{INSTANCE_ROUTE}/{quoted}"

        def url(path: str = "", **params: str) -> str:
            query = dict(params)
            if code:
                query["code"] = code
            suffix = f"?{urlencode(query, safe='{}')}" if query else ""
            return f"{root}{path}{suffix}"

        return {
            "id": instance_id,
            "statusQueryGetUri": url(),
            "sendEventPostUri": url("/raiseEvent/{eventName}"),
            "terminatePostUri": url("/terminate", reason="{text}"),
            "rewindPostUri": url("/rewind", reason="{text}"),
            "purgeHistoryDeleteUri": url(),
            "restartPostUri": url("/restart"),
            "suspendPostUri": url("/suspend", reason="{text}"),
            "resumePostUri": url("/resume", reason="{text}"),
        }

    def create_check_status_response(
        self, request: func.HttpRequest, instance_id: str
    ) -> func.HttpResponse:
        """202 Accepted with Location and Retry-After, and the management URLs as JSON."""
        payload = self.get_client_response_links(request, instance_id)
        return func.HttpResponse(
            body=json.dumps(payload),
            status_code=202,
            mimetype="application/json",
            headers={"Location": payload["statusQueryGetUri"], "Retry-After": "1"},
        )

    async def wait_for_completion_or_create_check_status_response(
        self,
        request: func.HttpRequest,
        instance_id: str,
        timeout_in_milliseconds: int = 10_000,
        retry_interval_in_milliseconds: int = 1_000,
    ) -> func.HttpResponse:
        """The output (200) if the instance completes in time; its status as JSON if it
        ends otherwise in time (200 terminated or canceled, 500 failed); else the
        check-status 202."""
        if retry_interval_in_milliseconds > timeout_in_milliseconds:
            raise ValueError(
                f"Total timeout {timeout_in_milliseconds} (ms) should be bigger than retry "
                f"timeout {retry_interval_in_milliseconds} (ms)"
            )
        status = await self.wait_for_completion(
            instance_id, timeout_in_milliseconds, retry_interval_in_milliseconds
        )
        if status is None or not status.runtime_status.is_terminal:
            return self.create_check_status_response(request, instance_id)
        if status.runtime_status is OrchestrationRuntimeStatus.Completed:
            return func.HttpResponse(
                json.dumps(status.output), status_code=200, mimetype="application/json"
            )
        failed = status.runtime_status is OrchestrationRuntimeStatus.Failed
        return func.HttpResponse(
            json.dumps(status.to_json()),
            status_code=500 if failed else 200,
            mimetype="application/json",
        )
