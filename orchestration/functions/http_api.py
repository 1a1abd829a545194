"""The engine's HTTP functions: the default starter and the instance management API.

Paths follow Durable Functions' instance API below `/{routePrefix}/durabletask/` (the host
reserves `admin/`, and `runtime/webhooks/` belongs to host extensions). Every error answers
with a JSON body `{"error": ..., "detail": ...}`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import azure.functions as func

from orchestration.client import (
    DurableOrchestrationClient,
    InstanceNotFoundError,
    InstanceStateError,
)
from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.storage.hub import InstanceExistsError
from orchestration.storage.names import InvalidNameError

if TYPE_CHECKING:
    from orchestration.functions.app import DFApp
    from orchestration.functions.engine import Engine

JSON = "application/json"


def base_url(engine: Engine, request: func.HttpRequest | None) -> str | None:
    if request is None:
        return None
    parts = urlsplit(request.url)
    prefix = engine.settings.route_prefix
    return f"{parts.scheme}://{parts.netloc}/{prefix}".rstrip("/")


def error(status: int, message: str, detail: str = "") -> func.HttpResponse:
    body = {"error": message, "detail": detail}
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype=JSON)


def _flag(request: func.HttpRequest, name: str) -> bool:
    value = request.params.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise ValueError(f"query parameter {name} must be true or false")
    return value in ("true", "1")


def _json_body(request: func.HttpRequest, limit: int) -> Any:
    raw = request.get_body() or b""
    if len(raw) > limit:
        raise OverflowError(f"request body is {len(raw)} bytes; the limit is {limit}")
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as failure:
        raise ValueError(f"request body is not valid JSON: {failure}") from failure


async def _client(engine: Engine, request: func.HttpRequest) -> DurableOrchestrationClient:
    return await engine.client(base_url(engine, request))


async def start(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    name = request.route_params.get("functionName", "")
    instance_id = request.route_params.get("instanceId") or None
    try:
        payload = _json_body(request, engine.settings.max_request_bytes)
    except OverflowError as failure:
        return error(413, "Request body too large", str(failure))
    except ValueError as failure:
        return error(400, "Malformed JSON", str(failure))
    if name not in engine.registry.orchestrators:
        return error(
            404,
            f"No orchestrator named {name!r}",
            f"Registered orchestrators: {engine.registry.describe_orchestrators()}",
        )
    client = await _client(engine, request)
    try:
        instance_id = await client.start_new(name, instance_id, payload)
    except InvalidNameError as failure:
        return error(400, "Invalid instance id", str(failure))
    except InstanceExistsError as failure:
        return error(409, "Instance already exists", str(failure))
    return client.create_check_status_response(request, instance_id)


async def get_instance(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    instance_id = request.route_params.get("instanceId", "")
    try:
        show_history = _flag(request, "showHistory")
        show_output = _flag(request, "showHistoryOutput")
        show_input = request.params.get("showInput", "true").lower() != "false"
        fail_500 = _flag(request, "returnInternalServerErrorOnFailure")
        client = await _client(engine, request)
        status = await client.get_status(instance_id, show_history, show_output, show_input)
    except (ValueError, InvalidNameError) as failure:
        return error(400, "Invalid request", str(failure))
    if status is None:
        return error(404, "Instance not found", f"No instance with id {instance_id!r}.")
    code = 200
    if status.runtime_status in (
        OrchestrationRuntimeStatus.Running,
        OrchestrationRuntimeStatus.Pending,
        OrchestrationRuntimeStatus.Suspended,
    ):
        code = 202
    elif status.runtime_status is OrchestrationRuntimeStatus.Failed and fail_500:
        code = 500
    headers = {}
    if code == 202:
        headers = {"Location": request.url, "Retry-After": "1"}
    return func.HttpResponse(
        json.dumps(status.to_json()), status_code=code, mimetype=JSON, headers=headers
    )


async def _operate(engine: Engine, request: func.HttpRequest, operation: str) -> func.HttpResponse:
    instance_id = request.route_params.get("instanceId", "")
    client = await _client(engine, request)
    reason = request.params.get("reason")
    try:
        if operation == "raiseEvent":
            try:
                data = _json_body(request, engine.settings.max_request_bytes)
            except OverflowError as failure:
                return error(413, "Request body too large", str(failure))
            except ValueError as failure:
                return error(400, "Malformed JSON", str(failure))
            await client.raise_event(instance_id, request.route_params.get("eventName", ""), data)
        elif operation == "terminate":
            await client.terminate(instance_id, reason)
        elif operation == "suspend":
            await client.suspend(instance_id, reason)
        elif operation == "resume":
            await client.resume(instance_id, reason)
        elif operation == "purge":
            result = await client.purge_instance_history(instance_id)
            if result.instances_deleted == 0:
                return error(404, "Instance not found", f"No instance with id {instance_id!r}.")
            return func.HttpResponse(json.dumps(result.to_json()), status_code=200, mimetype=JSON)
    except InvalidNameError as failure:
        return error(400, "Invalid request", str(failure))
    except InstanceNotFoundError as failure:
        return error(404, "Instance not found", str(failure))
    except InstanceStateError as failure:
        return error(410, "Instance is not running", str(failure))
    return func.HttpResponse(status_code=202)


def register(app: DFApp, engine: Engine) -> None:
    """Add the starter and the management routes to `app`."""
    configured = engine.settings.management_auth
    level = func.AuthLevel(configured) if configured else app.auth_level

    @app.function_name("durable_http_start")
    @app.route(
        route="orchestrators/{functionName}/{instanceId?}", methods=["POST"], auth_level=level
    )
    async def http_start(req: func.HttpRequest) -> func.HttpResponse:
        return await start(engine, req)

    @app.function_name("durable_instance_status")
    @app.route(route="durabletask/instances/{instanceId}", methods=["GET"], auth_level=level)
    async def instance_status(req: func.HttpRequest) -> func.HttpResponse:
        return await get_instance(engine, req)

    @app.function_name("durable_instance_purge")
    @app.route(route="durabletask/instances/{instanceId}", methods=["DELETE"], auth_level=level)
    async def instance_purge(req: func.HttpRequest) -> func.HttpResponse:
        return await _operate(engine, req, "purge")

    @app.function_name("durable_instance_raise_event")
    @app.route(
        route="durabletask/instances/{instanceId}/raiseEvent/{eventName}",
        methods=["POST"],
        auth_level=level,
    )
    async def instance_raise_event(req: func.HttpRequest) -> func.HttpResponse:
        return await _operate(engine, req, "raiseEvent")

    for operation in ("terminate", "suspend", "resume"):
        _register_operation(app, engine, operation, level)


def _register_operation(app: DFApp, engine: Engine, operation: str, level: func.AuthLevel) -> None:
    async def instance_operation(req: func.HttpRequest) -> func.HttpResponse:
        return await _operate(engine, req, operation)

    instance_operation.__name__ = f"durable_instance_{operation}"
    app.function_name(f"durable_instance_{operation}")(
        app.route(
            route=f"durabletask/instances/{{instanceId}}/{operation}",
            methods=["POST"],
            auth_level=level,
        )(instance_operation)
    )
