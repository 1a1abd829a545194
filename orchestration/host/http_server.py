"""HTTP triggers: the route table's trigger handler and the aiohttp server in front of it."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import azure.functions as func
from aiohttp import web

from orchestration.host import telemetry
from orchestration.host.app_loader import BindingSpec, FunctionSpec
from orchestration.host.binding_data import http_binding_data
from orchestration.host.bindings import (
    BindingConfigError,
    BindingHandler,
    HostContext,
    Invocation,
    Listener,
    TriggerHandler,
)
from orchestration.host.http_guard import (
    ROUTE_BODY_LIMIT_FIELD,
    BodyBudget,
    BodyReservation,
    GuardedServer,
    HttpLimits,
    RequestRefused,
    read_body,
    strict_headers,
    strict_path,
    strict_query,
)
from orchestration.host.invoker import InvocationResult
from orchestration.host.keys import HostKeys
from orchestration.host.routes import (
    WEBHOOK_FIELD,
    Route,
    RouteError,
    check_not_reserved,
    check_webhook_route,
)

log = logging.getLogger("orchestration.host.http")

AUTH_LEVELS = ("anonymous", "function", "admin", "system")


def route_of(function: FunctionSpec) -> str:
    """The function's route template (its name when none is given)."""
    return str(function.trigger.get("route") or function.name).strip("/")


def auth_level_of(function: FunctionSpec) -> str:
    """The function's authLevel, lower case (function when unset, as the host defaults)."""
    return str(function.trigger.get("authLevel") or "function").lower()


def body_limit_of(function: FunctionSpec, limits: HttpLimits) -> int:
    """The largest body the function takes: the host's limit, or its route's if lower."""
    own = function.trigger.get(ROUTE_BODY_LIMIT_FIELD)
    return min(limits.max_body, int(own)) if own else limits.max_body


class HttpTriggerHandler(TriggerHandler):
    """httpTrigger: checks the route at start and adds it to the host's router."""

    def validate(self, function: FunctionSpec, host: HostContext) -> None:
        try:
            check_not_reserved(route_of(function))
            Route(route_of(function), None, function)  # compiling raises on a bad template
            webhook = function.trigger.get(WEBHOOK_FIELD)
            if webhook is not None:
                if not isinstance(webhook, str) or not webhook.strip("/"):
                    raise RouteError(f"{WEBHOOK_FIELD} must be a route template")
                check_webhook_route(route_of(function), webhook)
        except RouteError as err:
            raise BindingConfigError(str(err)) from err
        if auth_level_of(function) not in AUTH_LEVELS:
            raise BindingConfigError(f"authLevel {auth_level_of(function)!r} is not supported")
        own = function.trigger.get(ROUTE_BODY_LIMIT_FIELD)
        if own is not None and (not isinstance(own, int) or own <= 0):
            raise BindingConfigError(f"{ROUTE_BODY_LIMIT_FIELD} must be a positive number of bytes")

    def create_listener(self, function: FunctionSpec, host: HostContext) -> Listener | None:
        host.router.add(route_of(function), function.trigger.get("methods"), function)
        webhook = function.trigger.get(WEBHOOK_FIELD)
        if webhook:
            host.router.add_webhook(webhook, function.trigger.get("methods"), function)
        return None


class HttpOutputHandler(BindingHandler):
    """The `http` output binding: the HTTP server reads the value from the invocation result."""

    async def write_output(
        self, binding: BindingSpec, value: Any, invocation: Invocation, host: HostContext
    ) -> None:
        return None


def to_function_request(
    request: web.BaseRequest,
    body: bytes,
    route_values: dict[str, str],
    headers: dict[str, str] | None = None,
    query: list[tuple[str, str]] | None = None,
) -> func.HttpRequest:
    """An aiohttp request as the `func.HttpRequest` the function receives."""
    if headers is None:
        headers = strict_headers(request)
    if query is None:
        query = strict_query(request.rel_url.raw_query_string)
    return func.HttpRequest(
        method=request.method,
        url=str(request.url),
        headers=headers,
        params=dict(query),
        route_params=route_values,
        body=body,
    )


def _response_value(function: FunctionSpec, result: InvocationResult) -> Any:
    for binding in function.other_bindings:
        if binding.type.lower() == "http" and binding.is_output:
            return result.outputs.get(binding.name)
    return result.return_value


def to_web_response(value: Any) -> web.Response:
    """Map what an HTTP function returned to an aiohttp response."""
    if value is None:
        return web.Response(status=204)
    if isinstance(value, str):
        return web.Response(text=value)
    if isinstance(value, (bytes, bytearray)):
        return web.Response(body=bytes(value), content_type="application/octet-stream")
    if not isinstance(value, func.HttpResponse):
        raise TypeError(
            f"an HTTP function must return func.HttpResponse, got {type(value).__name__}"
        )
    headers = {str(k): str(v) for k, v in value.headers.items()}
    if not any(k.lower() == "content-type" for k in headers) and value.mimetype:
        charset = f"; charset={value.charset}" if value.charset else ""
        headers["Content-Type"] = f"{value.mimetype}{charset}"
    return web.Response(status=value.status_code, body=value.get_body(), headers=headers)


class HttpServer:
    """Serves the router's functions at http://BIND:PORT/{routePrefix}/{route}."""

    def __init__(
        self,
        host: HostContext,
        keys: HostKeys,
        port: int,
        bind: str = "127.0.0.1",
        reuse_port: bool = False,
        grace: float = 30.0,
        limits: HttpLimits | None = None,
    ) -> None:
        self.host = host
        self.grace = grace
        self.keys = keys
        self.port = port
        self.bind = bind
        self.reuse_port = reuse_port
        self.limits = limits or HttpLimits()
        self._budget = BodyBudget(self.limits.body_budget)
        self._runner: web.ServerRunner | None = None

    async def start(self) -> None:
        """Bind the port and start serving."""
        server = GuardedServer(self.handle, self.limits, access_log=None)
        self._runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=self.grace)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind, self.port, reuse_port=self.reuse_port or None)
        await site.start()

    async def stop(self) -> None:
        """Stop accepting connections and close the server."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @staticmethod
    def _key(headers: dict[str, str], query: list[tuple[str, str]]) -> str | None:
        header = next((v for k, v in headers.items() if k.lower() == "x-functions-key"), None)
        return header or next((v for k, v in query if k == "code"), None)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Check, route, authorize, read the body, invoke, map the response."""
        reservation = self._budget.reserve()
        try:
            return await self._handle(request, reservation)
        except RequestRefused as refused:
            return refused.response()
        finally:
            reservation.release()

    async def _handle(
        self, request: web.BaseRequest, reservation: BodyReservation
    ) -> web.StreamResponse:
        path = strict_path(request.rel_url.raw_path)
        query = strict_query(request.rel_url.raw_query_string)
        headers = strict_headers(request)
        if path.rstrip("/") == "":
            return web.Response(text="Your Functions app is up and running.\n")
        if path.lower().rstrip("/") == "/admin/host/status":
            return self._status(headers, query)
        found, _path_known = self.host.router.match(request.method, path)
        if found is None:
            # The Functions host answers 404 also for a known route with another method.
            return web.Response(status=404)
        function: FunctionSpec = found.route.target
        if not self.keys.authorize(
            auth_level_of(function), function.name, self._key(headers, query)
        ):
            return web.Response(status=401)
        body = await read_body(
            request, body_limit_of(function, self.limits), reservation, self.limits.body_timeout
        )
        metadata = (
            http_binding_data(found.values, query, headers, body)
            if function.uses_binding_data
            else {}
        )
        route = f"/{self.host.router.prefix}/{found.route.template}".replace("//", "/")
        with telemetry.http_span(request.method, route, path, headers) as span:
            response = await self._invoke(
                function, request, body, found.values, headers, query, metadata
            )
            telemetry.http_status(span, response.status)
        return response

    async def _invoke(
        self,
        function: FunctionSpec,
        request: web.BaseRequest,
        body: bytes,
        values: dict[str, str],
        headers: dict[str, str],
        query: list[tuple[str, str]],
        metadata: dict[str, Any],
    ) -> web.StreamResponse:
        result = await self.host.invoker.invoke(
            function, to_function_request(request, body, values, headers, query), metadata
        )
        del body
        if not result.succeeded:
            return web.Response(status=500)
        try:
            return to_web_response(_response_value(function, result))
        except TypeError as err:
            log.error("Function '%s' (Id=%s): %s", function.name, result.invocation_id, err)
            return web.Response(status=500)

    def _status(self, headers: dict[str, str], query: list[tuple[str, str]]) -> web.Response:
        if not self.keys.authorize("admin", "", self._key(headers, query)):
            return web.Response(status=401)
        document = {"id": self.host.host_id, "state": "Running", "processId": os.getpid()}
        return web.Response(text=json.dumps(document), content_type="application/json")
