"""HTTP triggers: the route table's trigger handler and the aiohttp server in front of it."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import azure.functions as func
from aiohttp import web

from orchestration.host.app_loader import BindingSpec, FunctionSpec
from orchestration.host.bindings import (
    BindingConfigError,
    BindingHandler,
    HostContext,
    Invocation,
    Listener,
    TriggerHandler,
)
from orchestration.host.invoker import InvocationResult
from orchestration.host.keys import HostKeys
from orchestration.host.routes import Route, RouteError, check_not_reserved

log = logging.getLogger("orchestration.host.http")

AUTH_LEVELS = ("anonymous", "function", "admin", "system")
MAX_BODY = 100 * 1024 * 1024  # the Functions host's request size limit


def route_of(function: FunctionSpec) -> str:
    """The function's route template (its name when none is given)."""
    return str(function.trigger.get("route") or function.name).strip("/")


def auth_level_of(function: FunctionSpec) -> str:
    """The function's authLevel, lower case (function when unset, as the host defaults)."""
    return str(function.trigger.get("authLevel") or "function").lower()


class HttpTriggerHandler(TriggerHandler):
    """httpTrigger: checks the route at start and adds it to the host's router."""

    def validate(self, function: FunctionSpec, host: HostContext) -> None:
        try:
            check_not_reserved(route_of(function))
            Route(route_of(function), None, function)  # compiling raises on a bad template
        except RouteError as err:
            raise BindingConfigError(str(err)) from err
        if auth_level_of(function) not in AUTH_LEVELS:
            raise BindingConfigError(f"authLevel {auth_level_of(function)!r} is not supported")

    def create_listener(self, function: FunctionSpec, host: HostContext) -> Listener | None:
        host.router.add(route_of(function), function.trigger.get("methods"), function)
        return None


class HttpOutputHandler(BindingHandler):
    """The `http` output binding: the HTTP server reads the value from the invocation result."""

    async def write_output(
        self, binding: BindingSpec, value: Any, invocation: Invocation, host: HostContext
    ) -> None:
        return None


def to_function_request(
    request: web.Request, body: bytes, route_values: dict[str, str]
) -> func.HttpRequest:
    """An aiohttp request as the `func.HttpRequest` the function receives."""
    headers: dict[str, str] = {}
    for key, value in request.headers.items():
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return func.HttpRequest(
        method=request.method,
        url=str(request.url),
        headers=headers,
        params={k: v for k, v in request.query.items()},
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
    ) -> None:
        self.host = host
        self.grace = grace
        self.keys = keys
        self.port = port
        self.bind = bind
        self.reuse_port = reuse_port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind the port and start serving."""
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=self.grace
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind, self.port, reuse_port=self.reuse_port or None)
        await site.start()

    async def stop(self) -> None:
        """Stop accepting connections and close the server."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _key(self, request: web.Request) -> str | None:
        return request.headers.get("x-functions-key") or request.query.get("code")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Route, authorize, invoke, map the response."""
        path = request.rel_url.raw_path
        if path.rstrip("/") == "":
            return web.Response(text="Your Functions app is up and running.\n")
        if path.lower().rstrip("/") == "/admin/host/status":
            return self._status(request)
        found, _path_known = self.host.router.match(request.method, path)
        if found is None:
            # The Functions host answers 404 also for a known route with another method.
            return web.Response(status=404)
        function: FunctionSpec = found.route.target
        if not self.keys.authorize(auth_level_of(function), function.name, self._key(request)):
            return web.Response(status=401)
        body = await request.read()
        result = await self.host.invoker.invoke(
            function, to_function_request(request, body, found.values)
        )
        if not result.succeeded:
            return web.Response(status=500)
        try:
            return to_web_response(_response_value(function, result))
        except TypeError as err:
            log.error("Function '%s' (Id=%s): %s", function.name, result.invocation_id, err)
            return web.Response(status=500)

    def _status(self, request: web.Request) -> web.Response:
        if not self.keys.authorize("admin", "", self._key(request)):
            return web.Response(status=401)
        document = {"id": self.host.host_id, "state": "Running", "processId": os.getpid()}
        return web.Response(text=json.dumps(document), content_type="application/json")
