"""Dapr's workflow HTTP API on the same engine, below `/{routePrefix}/v1.0/workflows/dapr/`.

    POST {workflowName}/start[?instanceID=]    202 {"instanceID": ...}
    GET  {instanceId}                           200 {"instanceID", "workflowName", "createdAt",
                                                     "lastUpdatedAt", "runtimeStatus", "properties"}
    POST {instanceId}/raiseEvent/{eventName}    202
    POST {instanceId}/terminate|pause|resume    202
    POST {instanceId}/purge                     202

The same paths answer below `v1.0-beta1/` and `v1.0-alpha1/` (Dapr 1.11 to 1.14 served
them there, in these shapes). Dapr 1.10's alpha API took the instance id in the path:
`POST v1.0-alpha1/workflows/dapr/{workflowName}/{instanceId}/start` and
`GET v1.0-alpha1/workflows/dapr/{workflowName}/{instanceId}` are served too, with the
shapes above (the body is the input as it is, as in every later version; the answer
`{"instanceID": ...}`).

Statuses are Dapr's upper-case names (RUNNING, COMPLETED, ...). Errors carry Dapr's
`errorCode` and `message` beside our `error` and `detail`. With host.json's `routePrefix` set
to "" the paths are exactly Dapr's.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import azure.functions as func

from orchestration.client import DurableOrchestrationStatus, InstanceStateError
from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.functions.management.common import (
    Failure,
    Handler,
    answer,
    client_for,
    error,
    guarded,
    iso,
    route_value,
)
from orchestration.functions.management.validation import (
    parse_event_name,
    parse_function_name,
    parse_instance_id,
    parse_json_body,
    parse_reason,
)
from orchestration.storage.hub import InstanceExistsError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from orchestration.functions.engine import Engine

COMPONENT = "dapr"


def dapr_status(status: OrchestrationRuntimeStatus) -> str:
    """Dapr's name of a runtime status: ContinuedAsNew -> CONTINUED_AS_NEW."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", status.value).upper()


def _dapr_error(status: int, code: str, message: str, detail: str = "") -> func.HttpResponse:
    return error(status, message, detail, errorCode=code, message=f"{message}. {detail}".strip())


def _text(value: Any) -> str:
    """A value as Dapr shows it in `properties`: its JSON text ("" for none)."""
    return "" if value is None else json.dumps(value)


def to_dapr(status: DurableOrchestrationStatus) -> dict[str, Any]:
    properties = {
        "dapr.workflow.input": _text(status.input_),
        "dapr.workflow.custom_status": _text(status.custom_status),
    }
    if status.runtime_status is OrchestrationRuntimeStatus.Failed and status.failure:
        properties["dapr.workflow.failure.error_type"] = str(status.failure.get("errorType", ""))
        properties["dapr.workflow.failure.error_message"] = str(status.failure.get("message", ""))
    elif status.output is not None:
        properties["dapr.workflow.output"] = _text(status.output)
    return {
        "instanceID": status.instance_id,
        "workflowName": status.name,
        "createdAt": iso(status.created_time),
        "lastUpdatedAt": iso(status.last_updated_time),
        "runtimeStatus": dapr_status(status.runtime_status),
        "properties": properties,
    }


def _dapr_failure(failure: Failure) -> func.HttpResponse:
    return _dapr_error(failure.status, failure.code, failure.title, failure.detail)


def dapr_guarded(handler: Callable[..., Awaitable[func.HttpResponse]]) -> Any:
    """Like `common.guarded`, with Dapr's error codes."""
    return guarded(handler, _dapr_failure)


def _not_found(instance_id: str) -> func.HttpResponse:
    return _dapr_error(
        404, "ERR_INSTANCE_ID_NOT_FOUND", "Workflow instance not found", f"{instance_id!r}"
    )


@dapr_guarded
async def start(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    name = parse_function_name(route_value(request, "workflowName"), "Workflow name")
    instance_id = route_value(request, "instanceId") or request.params.get("instanceID") or None
    if instance_id is not None:
        parse_instance_id(instance_id)
    payload = parse_json_body(request.get_body(), engine.settings.max_request_bytes)
    if name not in engine.registry.orchestrators:
        return _dapr_error(
            400,
            "ERR_WORKFLOW_NAME_NOT_FOUND",
            f"No workflow named {name!r}",
            f"Registered workflows: {engine.registry.describe_orchestrators()}",
        )
    client = await client_for(engine, request)
    try:
        instance_id = await client.start_new(name, instance_id, payload)
    except InstanceExistsError as failure:
        return _dapr_error(409, "ERR_INSTANCE_ID_EXISTS", "Instance already exists", str(failure))
    return answer({"instanceID": instance_id}, 202)


@dapr_guarded
async def get(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    instance_id = parse_instance_id(route_value(request, "instanceId"))
    client = await client_for(engine, request)
    status = await client.get_status(instance_id, show_input=True)
    if status is None:
        return _not_found(instance_id)
    return answer(to_dapr(status))


@dapr_guarded
async def raise_event(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    instance_id = parse_instance_id(route_value(request, "instanceId"))
    event_name = parse_event_name(route_value(request, "eventName"))
    data = parse_json_body(request.get_body(), engine.settings.max_request_bytes)
    return await _operate(engine, request, instance_id, "raiseEvent", event_name, data)


async def _operate(
    engine: Engine,
    request: func.HttpRequest,
    instance_id: str,
    operation: str,
    event_name: str = "",
    data: Any = None,
) -> func.HttpResponse:
    client = await client_for(engine, request)
    status = await client.get_status(instance_id)
    if status is None:
        return _not_found(instance_id)
    reason = parse_reason(request.params)
    if operation == "purge":
        if not status.runtime_status.is_terminal:
            return _dapr_error(
                412,
                "ERR_WORKFLOW_NOT_FINISHED",
                "Workflow is still running",
                f"{instance_id!r} is {dapr_status(status.runtime_status)}; terminate it first.",
            )
        await client.purge_instance_history(instance_id)
        return func.HttpResponse(status_code=202)
    if status.runtime_status.is_terminal:
        return _dapr_error(
            410,
            "ERR_WORKFLOW_NOT_RUNNING",
            "Workflow is not running",
            f"{instance_id!r} is {dapr_status(status.runtime_status)}.",
        )
    try:
        if operation == "raiseEvent":
            await client.raise_event(instance_id, event_name, data)
        elif operation == "terminate":
            await client.terminate(instance_id, reason)
        elif operation == "pause":
            await client.suspend(instance_id, reason)
        elif operation == "resume":
            await client.resume(instance_id, reason)
    except InstanceStateError as failure:
        return _dapr_error(410, "ERR_WORKFLOW_NOT_RUNNING", "Workflow is not running", str(failure))
    return func.HttpResponse(status_code=202)


def operation_handler(operation: str) -> Any:
    @dapr_guarded
    async def handle(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
        instance_id = parse_instance_id(route_value(request, "instanceId"))
        return await _operate(engine, request, instance_id, operation)

    handle.__name__ = f"dapr_{operation}"
    return handle


OPERATIONS = ("terminate", "pause", "resume", "purge")
VERSIONS = {"v1.0": "", "v1.0-beta1": "_beta1", "v1.0-alpha1": "_alpha1"}

DaprRoute = tuple[str, str, str, Handler]


def routes() -> list[DaprRoute]:
    """(function name, route, method, handler) of every path form, in each API version."""
    found: list[DaprRoute] = []
    for version, suffix in VERSIONS.items():
        base = f"{version}/workflows/{COMPONENT}"
        found += [
            (f"durable_dapr{suffix}_start", f"{base}/{{workflowName}}/start", "POST", start),
            (f"durable_dapr{suffix}_get", f"{base}/{{instanceId}}", "GET", get),
            (
                f"durable_dapr{suffix}_raise_event",
                f"{base}/{{instanceId}}/raiseEvent/{{eventName}}",
                "POST",
                raise_event,
            ),
        ]
        found += [
            (
                f"durable_dapr{suffix}_{operation}",
                f"{base}/{{instanceId}}/{operation}",
                "POST",
                operation_handler(operation),
            )
            for operation in OPERATIONS
        ]
    alpha = f"v1.0-alpha1/workflows/{COMPONENT}/{{workflowName}}/{{instanceId}}"
    found += [
        ("durable_dapr_alpha1_start_with_id", f"{alpha}/start", "POST", start),
        ("durable_dapr_alpha1_get_by_name", alpha, "GET", get),
    ]
    return found
