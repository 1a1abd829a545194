"""The engine's HTTP functions: the default starter, the instance management API in Durable
Functions' shape, the same operations in Dapr's workflow API shape, and the OpenAPI document.

Paths live below `/{routePrefix}/` (the host reserves `admin/`, and `runtime/webhooks/`
belongs to host extensions):

- `orchestrators/{functionName}[/{instanceId}]` and `durabletask/instances/...`
  (`management.instances`),
- `v1.0/workflows/dapr/...` (`management.dapr`),
- `durabletask/openapi.json` (`management.openapi`).

Keys: every one of these functions has the management auth level: host.json's
`extensions.durableTask.managementAuthLevel` when set, else the app's `http_auth_level`
(`function` for a `DFApp` unless the app says otherwise). The check-status URLs carry the key
the request came with (`x-functions-key` or `code`), else the `DURABLE_MANAGEMENT_KEY` app
setting, as `code=`. Every error answers with a JSON body `{"error": ..., "detail": ...}`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import azure.functions as func

from orchestration.functions.management import dapr, instances, openapi
from orchestration.functions.management.common import (
    JSON,
    MANAGEMENT_KEY_SETTING,
    base_url,
    error,
    management_key,
)

if TYPE_CHECKING:
    from orchestration.functions.app import DFApp
    from orchestration.functions.engine import Engine

__all__ = [
    "JSON",
    "MANAGEMENT_KEY_SETTING",
    "base_url",
    "error",
    "management_auth_level",
    "management_key",
    "register",
]


def management_auth_level(app: DFApp, engine: Engine) -> func.AuthLevel:
    """host.json's `managementAuthLevel` when set, else the app's HTTP auth level."""
    configured = engine.settings.management_auth
    return func.AuthLevel(configured) if configured else app.auth_level


def _add(
    app: DFApp,
    engine: Engine,
    name: str,
    route: str,
    method: str,
    handler: Any,
    level: func.AuthLevel,
) -> None:
    async def endpoint(req: func.HttpRequest) -> func.HttpResponse:
        response: func.HttpResponse = await handler(engine, req)
        return response

    endpoint.__name__ = name
    endpoint.__qualname__ = name
    # The host refuses a larger body before reading it (on Azure its own limit applies, and
    # the handlers check this one again).
    limit = {"maxRequestBodySize": engine.settings.max_request_bytes}
    app.function_name(name)(
        app.route(route=route, methods=[method], auth_level=level, trigger_extra_fields=limit)(
            endpoint
        )
    )


def register(app: DFApp, engine: Engine) -> None:
    """Add the starter, the management API (DF and Dapr shapes) and its OpenAPI document."""
    level = management_auth_level(app, engine)
    base = "durabletask/instances"
    item = f"{base}/{{instanceId}}"
    _add(
        app,
        engine,
        "durable_http_start",
        "orchestrators/{functionName}/{instanceId?}",
        "POST",
        instances.start,
        level,
    )
    _add(app, engine, "durable_instances_query", base, "GET", instances.list_instances, level)
    _add(app, engine, "durable_instances_purge", base, "DELETE", instances.purge_instances, level)
    _add(app, engine, "durable_instance_status", item, "GET", instances.get_instance, level)
    _add(app, engine, "durable_instance_purge", item, "DELETE", instances.purge_instance, level)
    _add(
        app,
        engine,
        "durable_instance_raise_event",
        f"{item}/raiseEvent/{{eventName}}",
        "POST",
        instances.raise_event,
        level,
    )
    for operation, handler in instances.OPERATIONS.items():
        _add(
            app,
            engine,
            f"durable_instance_{operation}",
            f"{item}/{operation}",
            "POST",
            handler,
            level,
        )

    dapr_base = f"v1.0/workflows/{dapr.COMPONENT}"
    _add(
        app,
        engine,
        "durable_dapr_start",
        f"{dapr_base}/{{workflowName}}/start",
        "POST",
        dapr.start,
        level,
    )
    _add(app, engine, "durable_dapr_get", f"{dapr_base}/{{instanceId}}", "GET", dapr.get, level)
    _add(
        app,
        engine,
        "durable_dapr_raise_event",
        f"{dapr_base}/{{instanceId}}/raiseEvent/{{eventName}}",
        "POST",
        dapr.raise_event,
        level,
    )
    for operation in dapr.OPERATIONS:
        _add(
            app,
            engine,
            f"durable_dapr_{operation}",
            f"{dapr_base}/{{instanceId}}/{operation}",
            "POST",
            dapr.operation_handler(operation),
            level,
        )

    async def serve_openapi(engine: Engine, req: func.HttpRequest) -> func.HttpResponse:
        document = openapi.document(engine.settings.route_prefix)
        return func.HttpResponse(json.dumps(document), mimetype=JSON)

    _add(app, engine, "durable_openapi", "durabletask/openapi.json", "GET", serve_openapi, level)
