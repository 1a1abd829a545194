"""Durable Functions' instance API: paths, parameters, status codes and JSON as DF answers.

Below `/{routePrefix}/`:

    POST   orchestrators/{functionName}[/{instanceId}]     start (202 + check-status payload)
    GET    durabletask/instances                           query (paged: x-ms-continuation-token)
    DELETE durabletask/instances                           purge by filter
    GET    durabletask/instances/{instanceId}              status
    DELETE durabletask/instances/{instanceId}              purge one
    POST   durabletask/instances/{instanceId}/raiseEvent/{eventName}
    POST   durabletask/instances/{instanceId}/terminate|suspend|resume|rewind|restart
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import azure.functions as func

from orchestration.client import (
    DurableOrchestrationClient,
    DurableOrchestrationStatus,
    InstanceNotFoundError,
    InstanceStateError,
)
from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.functions.management.common import (
    answer,
    client_for,
    error,
    guarded,
    page_answer,
    page_token,
    query_values,
    route_value,
)
from orchestration.functions.management.validation import (
    BadRequest,
    InstanceQuery,
    parse_bool,
    parse_event_name,
    parse_function_name,
    parse_instance_id,
    parse_json_body,
    parse_reason,
    parse_top,
)
from orchestration.storage.hub import InstanceExistsError

if TYPE_CHECKING:
    from orchestration.functions.engine import Engine

Status = OrchestrationRuntimeStatus
RUNNING = (Status.Running, Status.Pending, Status.Suspended, Status.ContinuedAsNew)
TERMINAL = tuple(s for s in Status if s.is_terminal)
DEFAULT_PAGE = 100
MAX_WAIT_SECONDS = 230.0  # Azure's load balancer drops HTTP requests after 230 s


def _not_found(instance_id: str) -> func.HttpResponse:
    return error(404, "Instance not found", f"No instance with id {instance_id!r} exists.")


def _gone(status: DurableOrchestrationStatus) -> func.HttpResponse:
    return error(
        410,
        "Instance is not running",
        f"Instance {status.instance_id!r} is {status.runtime_status.value}.",
    )


def _seconds(request: func.HttpRequest, name: str) -> float | None:
    raw = request.params.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= MAX_WAIT_SECONDS:
        raise BadRequest(
            "Invalid query parameter",
            f"{name} must be a number of seconds above 0 and at most {MAX_WAIT_SECONDS:g}.",
        )
    return value


async def _check_status_answer(
    client: DurableOrchestrationClient, request: func.HttpRequest, instance_id: str
) -> func.HttpResponse:
    """DF's start answer: 202 with the check-status payload, or with `timeout` (and
    `pollingInterval`) in seconds the output once the instance finishes in time."""
    timeout = _seconds(request, "timeout")
    interval = _seconds(request, "pollingInterval") or 1.0
    if timeout is None:
        return client.create_check_status_response(request, instance_id)
    return await client.wait_for_completion_or_create_check_status_response(
        request, instance_id, int(timeout * 1000), int(interval * 1000)
    )


@guarded
async def start(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    name = parse_function_name(route_value(request, "functionName"))
    instance_id = route_value(request, "instanceId") or None
    if instance_id is not None:
        parse_instance_id(instance_id)
    payload = parse_json_body(request.get_body(), engine.settings.max_request_bytes)
    if name not in engine.registry.orchestrators:
        return error(
            400,
            f"No orchestrator named {name!r}",
            f"Registered orchestrators: {engine.registry.describe_orchestrators()}",
        )
    client = await client_for(engine, request)
    try:
        instance_id = await client.start_new(name, instance_id, payload)
    except InstanceExistsError as failure:
        return error(409, "Instance already exists", str(failure))
    return await _check_status_answer(client, request, instance_id)


def status_code(status: DurableOrchestrationStatus, fail_500: bool) -> int:
    if status.runtime_status in RUNNING:
        return 202
    if status.runtime_status is Status.Failed and fail_500:
        return 500
    return 200


@guarded
async def get_instance(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    instance_id = parse_instance_id(route_value(request, "instanceId"))
    params = request.params
    show_history = parse_bool(params, "showHistory", False)
    show_output = parse_bool(params, "showHistoryOutput", False)
    show_input = parse_bool(params, "showInput", True)
    fail_500 = parse_bool(params, "returnInternalServerErrorOnFailure", False)
    client = await client_for(engine, request)
    status = await client.get_status(instance_id, show_history, show_output, show_input)
    if status is None:
        return _not_found(instance_id)
    code = status_code(status, fail_500)
    headers = {"Location": request.url, "Retry-After": "1"} if code == 202 else {}
    return answer(status.to_json(), code, headers)


@guarded
async def list_instances(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    params = request.params
    query = InstanceQuery.from_params(params, query_values(request, "runtimeStatus"))
    show_input = parse_bool(params, "showInput", True)
    top = parse_top(params) or DEFAULT_PAGE
    token = page_token(request)
    client = await client_for(engine, request)
    hub = (await engine.runtime()).hub
    states, next_token = await hub.query_states(query.filter(), top, token)
    statuses = [await client.status_of(state, show_input=show_input) for state in states]
    return page_answer([s.to_json() for s in statuses], next_token)


@guarded
async def purge_instance(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    instance_id = parse_instance_id(route_value(request, "instanceId"))
    client = await client_for(engine, request)
    status = await client.get_status(instance_id)
    if status is None:
        return _not_found(instance_id)
    if not status.runtime_status.is_terminal:
        return error(
            412,
            "Instance is still running",
            f"Only finished instances can be purged; {instance_id!r} is "
            f"{status.runtime_status.value}. Terminate it first.",
        )
    result = await client.purge_instance_history(instance_id)
    if result.instances_deleted == 0:
        return _not_found(instance_id)
    return answer(result.to_json())


@guarded
async def purge_instances(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    params = request.params
    query = InstanceQuery.from_params(params, query_values(request, "runtimeStatus"))
    if query.created_from is None:
        raise BadRequest(
            "Missing query parameter",
            "createdTimeFrom is required (an ISO 8601 time); createdTimeTo defaults to now.",
        )
    statuses = list(query.statuses) or list(TERMINAL)
    running = [s.value for s in statuses if not s.is_terminal]
    if running:
        raise BadRequest(
            "Invalid query parameter",
            f"Only finished instances can be purged; runtimeStatus {', '.join(running)} "
            f"is not a final status.",
        )
    client = await client_for(engine, request)
    result = await client.purge_instance_history_by(
        query.created_from, query.created_to or datetime.now(UTC), statuses
    )
    if result.instances_deleted == 0:
        return error(404, "No instances matched", "Nothing was purged.")
    return answer(result.to_json())


@guarded
async def raise_event(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    instance_id = parse_instance_id(route_value(request, "instanceId"))
    event_name = parse_event_name(route_value(request, "eventName"))
    data = parse_json_body(request.get_body(), engine.settings.max_request_bytes)
    client = await client_for(engine, request)
    status = await client.get_status(instance_id)
    if status is None:
        return _not_found(instance_id)
    if status.runtime_status.is_terminal:
        return _gone(status)
    try:
        await client.raise_event(instance_id, event_name, data)
    except InstanceNotFoundError:
        return _not_found(instance_id)
    except InstanceStateError:
        return _gone(status)
    return func.HttpResponse(status_code=202)


async def _steer(engine: Engine, request: func.HttpRequest, operation: str) -> func.HttpResponse:
    instance_id = parse_instance_id(route_value(request, "instanceId"))
    reason = parse_reason(request.params)
    client = await client_for(engine, request)
    status = await client.get_status(instance_id)
    if status is None:
        return _not_found(instance_id)
    if operation == "rewind":
        if status.runtime_status is not Status.Failed:
            return error(
                412,
                "Instance is not Failed",
                f"Only a Failed instance can be rewound; {instance_id!r} is "
                f"{status.runtime_status.value}.",
            )
    elif status.runtime_status.is_terminal:
        return _gone(status)
    action = {
        "terminate": client.terminate,
        "suspend": client.suspend,
        "resume": client.resume,
        "rewind": client.rewind,
    }[operation]
    try:
        await action(instance_id, reason)
    except InstanceNotFoundError:
        return _not_found(instance_id)
    except InstanceStateError as failure:
        return error(410 if operation != "rewind" else 412, "Instance state changed", str(failure))
    return func.HttpResponse(status_code=202)


@guarded
async def terminate(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    return await _steer(engine, request, "terminate")


@guarded
async def suspend(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    return await _steer(engine, request, "suspend")


@guarded
async def resume(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    return await _steer(engine, request, "resume")


@guarded
async def rewind(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    return await _steer(engine, request, "rewind")


async def restart_instance(
    client: DurableOrchestrationClient, instance_id: str, new_instance_id: bool
) -> str:
    """Start the instance's orchestrator again with its original input; the new id."""
    return await client.restart(instance_id, new_instance_id)


@guarded
async def restart(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    instance_id = parse_instance_id(route_value(request, "instanceId"))
    new_id = parse_bool(request.params, "restartWithNewInstanceId", True)
    client = await client_for(engine, request)
    try:
        restarted = await restart_instance(client, instance_id, new_id)
    except InstanceNotFoundError:
        return _not_found(instance_id)
    except InstanceExistsError as failure:
        return error(409, "Instance is still running", str(failure))
    return await _check_status_answer(client, request, restarted)


OPERATIONS: dict[str, Any] = {
    "terminate": terminate,
    "suspend": suspend,
    "resume": resume,
    "rewind": rewind,
    "restart": restart,
}
