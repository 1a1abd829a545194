"""The dashboard: a page served by the app itself over the management API.

Three routes below `/{routePrefix}/durabletask/`:

- `dashboard/{*asset}` (GET, anonymous): the page's static files (`static/`), which hold no
  data and no key. A browser opens this URL; the page then signs in.
- `dashboard-session` (POST, the management API's key level): the page sends the key once in
  `x-functions-key` and gets a short-lived signed session token (`sessions`).
- `dashboard-api/{*path}` (GET, POST, DELETE, anonymous at the host, checked here): the
  management API on a session instead of a key. `path` is a management route
  (`durabletask/instances`, `orchestrators/{name}`, ...) and runs the same handler with the
  same answer, so everything the page does is a call a script can make with a key.

The host guards the session route like every management route; the other two are anonymous
at the host because a browser cannot send a header when it opens a page, and the API checks
the session in the `x-dashboard-session` header itself (a header, never a cookie, so another
site cannot make the browser call it). Disable it all with host.json's
`extensions.durableTask.dashboard.enabled: false`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

import azure.functions as func

from orchestration.functions.dashboard.routing import RouteTable
from orchestration.functions.dashboard.sessions import (
    SESSION_HEADER,
    DashboardSessions,
    SessionError,
)
from orchestration.functions.management.common import (
    add_route,
    answer,
    error,
    iso,
    rerouted,
)

if TYPE_CHECKING:
    from orchestration.functions.app import DFApp
    from orchestration.functions.engine import Engine

log = logging.getLogger("orchestration.dashboard")

PAGE_ROUTE = "durabletask/dashboard/{*asset}"
SESSION_ROUTE = "durabletask/dashboard-session"
API_ROUTE = "durabletask/dashboard-api/{*path}"
API_MARKER = "/durabletask/dashboard-api/"
# What the host's start-up banner calls the page (orchestration.host.runner).
LANDING_FIELD = "landingPage"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
# The page runs only its own files: no inline script, nothing from another origin.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


def static_files() -> dict[str, bytes]:
    """The page's files by name (read once: they ship inside the package)."""
    folder = resources.files(__package__).joinpath("static")
    return {
        entry.name: entry.read_bytes()
        for entry in folder.iterdir()
        if entry.is_file() and any(entry.name.endswith(suffix) for suffix in _TYPES)
    }


def _content_type(name: str) -> str:
    return next(kind for suffix, kind in _TYPES.items() if name.endswith(suffix))


def register(app: DFApp, engine: Engine, level: func.AuthLevel, routes: Sequence[Any]) -> None:
    """Add the page, the session route and the session-guarded API."""
    files = static_files()
    table = RouteTable([(route, method, handler) for _name, route, method, handler in routes])
    extra = {"maxRequestBodySize": engine.settings.max_request_bytes}

    async def page(req: func.HttpRequest) -> func.HttpResponse:
        asset = (req.route_params.get("asset") or "").strip("/") or "index.html"
        path = urlsplit(req.url).path
        if asset == "index.html" and not path.endswith("/") and not path.endswith(".html"):
            # Relative asset URLs need the trailing slash. A relative Location keeps working
            # behind a proxy that rewrites the path's front.
            target = path.rsplit("/", 1)[-1] + "/"
            query = urlsplit(req.url).query
            return func.HttpResponse(
                status_code=308, headers={"Location": target + (f"?{query}" if query else "")}
            )
        body = files.get(asset)
        if body is None:
            return error(404, "Not found", f"The dashboard has no file {asset!r}.")
        return func.HttpResponse(
            body,
            status_code=200,
            mimetype=_content_type(asset).split(";")[0],
            headers={**_PAGE_HEADERS, "Content-Type": _content_type(asset)},
        )

    async def sessions() -> DashboardSessions:
        hub = (await engine.runtime()).hub
        return DashboardSessions(await hub.secret(), engine.settings.dashboard_session)

    async def sign_in(req: func.HttpRequest) -> func.HttpResponse:
        if req.params.get("code"):
            # A key in a URL ends up in logs and browser history: refuse to teach that habit.
            return error(
                400,
                "Key in the URL",
                "Send the key in the x-functions-key header, not as code=.",
            )
        session = (await sessions()).issue()
        log.info("dashboard session issued", extra={"event": "dashboard_session"})
        return answer(
            {"token": session.token, "expiresAt": iso(session.expires_at)},
            headers={"Cache-Control": "no-store"},
        )

    async def api(req: func.HttpRequest) -> func.HttpResponse:
        try:
            (await sessions()).check(req.headers.get(SESSION_HEADER))
        except SessionError as failure:
            return error(401, "Unauthorized", str(failure))
        parts = urlsplit(req.url)
        # Azure routes without regard to case: find the marker the same way.
        at = parts.path.lower().find(API_MARKER)
        rest = parts.path[at + len(API_MARKER) :] if at >= 0 else ""
        segments = [unquote(s) for s in rest.split("/")] if rest else []
        found = table.match(req.method.upper(), segments)
        if found is None:
            return error(404, "Not found", f"No management route {rest!r}.")
        if isinstance(found, list):
            return error(
                405,
                "Method not allowed",
                f"{rest!r} takes {', '.join(found)}.",
            )
        handler, params = found
        # The handler sees the request as the management route's (its URLs point there).
        plain_path = parts.path[:at] + "/" + rest if at >= 0 else parts.path
        plain = urlunsplit((parts.scheme, parts.netloc, plain_path, parts.query, ""))
        headers = {k: v for k, v in req.headers.items() if k.lower() != SESSION_HEADER}
        inner = rerouted(req, params, url=plain, headers=headers)
        response: func.HttpResponse = await handler(engine, inner)
        response.headers["Cache-Control"] = "no-store"
        return response

    anonymous = func.AuthLevel.ANONYMOUS
    add_route(
        app,
        "durable_dashboard",
        PAGE_ROUTE,
        ["GET"],
        anonymous,
        page,
        {**extra, LANDING_FIELD: "Dashboard"},
    )
    add_route(app, "durable_dashboard_session", SESSION_ROUTE, ["POST"], level, sign_in, extra)
    add_route(
        app, "durable_dashboard_api", API_ROUTE, ["GET", "POST", "DELETE"], anonymous, api, extra
    )
