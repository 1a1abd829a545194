"""The engine's HTTP functions: the default starter, the instance management API in Durable
Functions' shape, the same operations in Dapr's workflow API shape, and the OpenAPI document.

Paths live below `/{routePrefix}/` (the host reserves `admin/`, and `runtime/webhooks/`
belongs to host extensions):

- `orchestrators/{functionName}[/{instanceId}]` and `durabletask/instances/...`
  (`management.instances`), `durabletask/entities/...` (`management.entities`),
- `v1.0/workflows/dapr/...`, and Dapr's older `v1.0-alpha1/` and `v1.0-beta1/` forms
  (`management.dapr`),
- `durabletask/hub` and `durabletask/poison/...` (`management.hub`),
- `durabletask/openapi.json` (`management.openapi`),
- `durabletask/dashboard/...`, the dashboard's page and its session (`functions.dashboard`).

Each Durable Functions route also names its path in DF's own extension API,
`/runtime/webhooks/durabletask/{instances|entities|orchestrators}/...` (the `webhookRoute`
trigger field): the local host serves the same function there too, with the same keys, so
the curl lines of DF's documentation work on it. On Azure those paths belong to the host's
extensions and never reach the app, so the URLs the engine hands out stay below the prefix.

Keys: every one of these functions needs a key: host.json's
`extensions.durableTask.managementAuthLevel` (`function`, `admin`, or `anonymous`, which
opens them to anyone and is warned about at start) when set, else `function` (`admin` for an
app whose `http_auth_level` is admin). An app's own routes take the app's level; management
never follows an anonymous app. The check-status URLs of a request that carried a key
(`x-functions-key` or `code`) carry it too; those of a request without one point at
`durabletask/links/{instanceId}/...`, anonymous routes that take the instance's link code
(`orchestration.storage.links`) as `code=` and open that one instance only. Every error
answers with a JSON body `{"error": ..., "detail": ...}`.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import azure.functions as func

from orchestration.client import INSTANCE_ROUTE, LINK_ROUTE
from orchestration.functions import dashboard
from orchestration.functions.management import dapr, entities, hub, instances, openapi
from orchestration.functions.management.common import (
    JSON,
    LINKED,
    Handler,
    add_route,
    base_url,
    error,
    rerouted,
)
from orchestration.functions.management.validation import BadRequest, parse_instance_id

if TYPE_CHECKING:
    from orchestration.functions.app import DFApp
    from orchestration.functions.engine import Engine

__all__ = ["JSON", "base_url", "error", "management_auth_level", "register"]

START_ROUTE = "orchestrators/{functionName}/{instanceId?}"

log = logging.getLogger("orchestration.management")

# The httpTrigger field that makes the local host also serve a function below
# /runtime/webhooks/ (orchestration.host.routes); Azure ignores it.
WEBHOOK_FIELD = "webhookRoute"
DF_WEBHOOK = "durabletask"  # DF's extension serves /runtime/webhooks/durabletask/...


def management_auth_level(app: DFApp, engine: Engine) -> func.AuthLevel:
    """host.json's `managementAuthLevel` when set; else `function`, or `admin` for an app
    whose own routes are admin. An anonymous app does not open management."""
    configured = engine.settings.management_auth
    if configured:
        return func.AuthLevel(configured)
    return (
        func.AuthLevel.ADMIN if app.auth_level is func.AuthLevel.ADMIN else func.AuthLevel.FUNCTION
    )


def linked(handler: Handler) -> Handler:
    """A handler of one instance behind its link code instead of a key."""

    async def open_with_link(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
        try:
            instance_id = parse_instance_id(request.route_params.get("instanceId") or "")
        except BadRequest as failure:
            return error(failure.status, failure.error, failure.detail)
        links = await (await engine.runtime()).hub.instance_links()
        if not links.opens(instance_id, request.params.get("code")):
            return error(
                401,
                "Unauthorized",
                "This URL needs the link code of its instance, as its check-status payload "
                "gives it (code=...).",
            )
        return await handler(engine, rerouted(request, {**request.route_params, LINKED: "1"}))

    return open_with_link


def _add(
    app: DFApp,
    engine: Engine,
    name: str,
    route: str,
    method: str,
    handler: Any,
    level: func.AuthLevel,
    webhook: str | None = None,
) -> None:
    async def endpoint(req: func.HttpRequest) -> func.HttpResponse:
        response: func.HttpResponse = await handler(engine, req)
        return response

    # The host refuses a larger body before reading it (on Azure its own limit applies, and
    # the handlers check this one again).
    extra: dict[str, Any] = {"maxRequestBodySize": engine.settings.max_request_bytes}
    if webhook is not None:
        extra[WEBHOOK_FIELD] = webhook
    add_route(app, name, route, [method], level, endpoint, extra)


Route = tuple[str, str, str, Handler]  # (function name, route below the prefix, method, handler)


def df_routes() -> list[Route]:
    """Durable Functions' instance and entity API; each route is also DF's webhook path."""
    base = INSTANCE_ROUTE
    item = f"{base}/{{instanceId}}"
    routes: list[Route] = [
        ("durable_http_start", START_ROUTE, "POST", instances.start),
        ("durable_instances_query", base, "GET", instances.list_instances),
        ("durable_instances_purge", base, "DELETE", instances.purge_instances),
        ("durable_instance_status", item, "GET", instances.get_instance),
        ("durable_instance_purge", item, "DELETE", instances.purge_instance),
        (
            "durable_instance_raise_event",
            f"{item}/raiseEvent/{{eventName}}",
            "POST",
            instances.raise_event,
        ),
    ]
    routes += [
        (f"durable_instance_{operation}", f"{item}/{operation}", "POST", handler)
        for operation, handler in instances.OPERATIONS.items()
    ]
    entity_base = f"{entities.ROUTE}/{{entityName}}"
    entity_item = f"{entity_base}/{{entityKey}}"
    routes += [
        ("durable_entities_list", entity_base, "GET", entities.list_entities),
        ("durable_entity_get", entity_item, "GET", entities.get_entity),
        ("durable_entity_signal", entity_item, "POST", entities.signal_entity),
    ]
    return routes


def hub_routes() -> list[Route]:
    """Ours, beyond DF's API: the hub overview and the poison queues (`management.hub`)."""
    message = "durabletask/poison/{queue}/{messageId}"
    return [
        ("durable_hub_overview", "durabletask/hub", "GET", hub.overview),
        ("durable_hub_registry", "durabletask/registry", "GET", hub.registered),
        ("durable_poison_list", "durabletask/poison", "GET", hub.list_poison),
        ("durable_poison_get", message, "GET", hub.get_poison),
        ("durable_poison_requeue", f"{message}/requeue", "POST", hub.requeue_poison),
        ("durable_poison_discard", message, "DELETE", hub.discard_poison),
    ]


async def serve_openapi(engine: Engine, req: func.HttpRequest) -> func.HttpResponse:
    document = openapi.document(engine.settings.route_prefix)
    return func.HttpResponse(json.dumps(document), mimetype=JSON)


def management_routes() -> list[Route]:
    """Every keyed management route: what the dashboard may call on a session, too."""
    return [
        *df_routes(),
        *hub_routes(),
        *dapr.routes(),
        ("durable_openapi", "durabletask/openapi.json", "GET", serve_openapi),
    ]


def register(app: DFApp, engine: Engine) -> None:
    """Add the starter, the management API (DF and Dapr shapes), its OpenAPI document and
    the dashboard."""
    level = management_auth_level(app, engine)
    if level is func.AuthLevel.ANONYMOUS:
        log.warning(
            "host.json sets extensions.durableTask.managementAuthLevel to anonymous: anyone "
            "who can reach this app can list, start, terminate and purge its instances",
            extra={"event": "management_open"},
        )
    _register_links(app, engine)
    for name, route, method, handler in df_routes():
        webhook = route if route.startswith(f"{DF_WEBHOOK}/") else f"{DF_WEBHOOK}/{route}"
        _add(app, engine, name, route, method, handler, level, webhook)
    dapr_routes = dapr.routes()
    for name, route, method, handler in [*hub_routes(), *dapr_routes]:
        _add(app, engine, name, route, method, handler, level)
    _add(app, engine, "durable_openapi", "durabletask/openapi.json", "GET", serve_openapi, level)
    if engine.settings.dashboard:
        dashboard.register(app, engine, level, management_routes())


def _register_links(app: DFApp, engine: Engine) -> None:
    """One instance's operations behind its link code (anonymous at the host: the code is
    checked here)."""
    item = f"{LINK_ROUTE}/{{instanceId}}"
    anonymous = func.AuthLevel.ANONYMOUS
    routes: list[tuple[str, str, str, Handler]] = [
        ("durable_link_status", item, "GET", instances.get_instance),
        ("durable_link_purge", item, "DELETE", instances.purge_instance),
        (
            "durable_link_raise_event",
            f"{item}/raiseEvent/{{eventName}}",
            "POST",
            instances.raise_event,
        ),
    ]
    routes += [
        (f"durable_link_{operation}", f"{item}/{operation}", "POST", handler)
        for operation, handler in instances.OPERATIONS.items()
    ]
    for name, route, method, handler in routes:
        _add(app, engine, name, route, method, linked(handler), anonymous)
