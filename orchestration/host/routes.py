"""ASP.NET-style route templates of HTTP triggers: `{name}`, `{id:int}`, `{x?}`, `{*rest}`.

Besides its route below the route prefix, an HTTP trigger may name a `webhookRoute`: a
path below `/runtime/webhooks/` where the Functions host serves its extensions' own
webhooks. Azure serves only real extensions there and ignores the field; the local host
also serves the function at that path (same function, same keys), so that an app standing
in for an extension answers the URLs its users copy from the extension's documentation.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

_TOKEN = re.compile(r"\{([^{}]*(?:\([^)]*\)[^{}]*)*)\}")
_PARAM = re.compile(
    r"^(\*{1,2})?([A-Za-z_][A-Za-z0-9_]*)((?::[^:=?]+(?:\([^)]*\))?)*)(\?)?(?:=(.*))?$"
)
_CONSTRAINT = re.compile(r":([A-Za-z]+)(?:\(([^)]*)\))?")

RESERVED_PREFIX = "admin"
WEBHOOK_ROOT = "runtime/webhooks"
WEBHOOK_FIELD = "webhookRoute"  # an httpTrigger field: also served below WEBHOOK_ROOT


class RouteError(ValueError):
    """A route template is invalid or reserved."""


def _number(kind: type[Any]) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            kind(value)
        except (ValueError, InvalidOperation):
            return False
        return True

    return check


def _is_int(value: str) -> bool:
    return re.fullmatch(r"-?\d+", value) is not None and -(2**31) <= int(value) < 2**31


def _is_long(value: str) -> bool:
    return re.fullmatch(r"-?\d+", value) is not None and -(2**63) <= int(value) < 2**63


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _constraint(name: str, arg: str | None) -> Callable[[str], bool]:
    """A predicate for one inline constraint, e.g. int, alpha, min(1), regex(^a+$)."""
    simple: dict[str, Callable[[str], bool]] = {
        "int": _is_int,
        "long": _is_long,
        "bool": lambda v: v.lower() in ("true", "false"),
        "guid": _is_guid,
        "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
        "datetime": _is_datetime,
        "decimal": _number(Decimal),
        "double": _number(float),
        "float": _number(float),
    }
    key = name.lower()
    if key in simple:
        return simple[key]
    args = [a.strip() for a in (arg or "").split(",")] if arg is not None else []
    try:
        if key == "min":
            return lambda v: _is_long(v) and int(v) >= int(args[0])
        if key == "max":
            return lambda v: _is_long(v) and int(v) <= int(args[0])
        if key == "range":
            low, high = int(args[0]), int(args[1])
            return lambda v: _is_long(v) and low <= int(v) <= high
        if key == "minlength":
            return lambda v: len(v) >= int(args[0])
        if key == "maxlength":
            return lambda v: len(v) <= int(args[0])
        if key == "length":
            if len(args) == 1:
                return lambda v: len(v) == int(args[0])
            return lambda v: int(args[0]) <= len(v) <= int(args[1])
        if key == "regex":
            pattern = re.compile(arg or "", re.IGNORECASE)
            return lambda v: pattern.search(v) is not None
    except (IndexError, ValueError) as err:
        raise RouteError(f"bad arguments for route constraint {name}({arg})") from err
    raise RouteError(f"unknown route constraint {name!r}")


@dataclass(frozen=True)
class _Param:
    name: str
    checks: tuple[Callable[[str], bool], ...]
    optional: bool
    default: str | None
    catch_all: bool


@dataclass
class Route:
    """A compiled route template bound to a target (an HTTP-triggered function)."""

    template: str
    methods: frozenset[str] | None
    target: Any
    regex: re.Pattern[str] = field(init=False)
    params: dict[str, _Param] = field(init=False, default_factory=dict)
    precedence: tuple[float, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.regex, self.params, self.precedence = _compile(self.template)

    def match(self, path: str) -> dict[str, str] | None:
        """Route values when `path` (without the route prefix) matches, else None."""
        found = self.regex.fullmatch(path)
        if not found:
            return None
        values: dict[str, str] = {}
        for name, param in self.params.items():
            raw = found.group(name)
            if raw is None or raw == "":
                if param.default is not None:
                    values[name] = param.default
                elif not param.optional and not param.catch_all:
                    return None
                continue
            value = raw if param.catch_all else unquote(raw, errors="strict")
            if not all(check(value) for check in param.checks):
                return None
            values[name] = value
        return values

    def allows(self, method: str) -> bool:
        """Whether the HTTP method is one the function accepts."""
        return self.methods is None or method.upper() in self.methods


def _compile(template: str) -> tuple[re.Pattern[str], dict[str, _Param], tuple[float, ...]]:
    template = template.strip("/")
    params: dict[str, _Param] = {}
    pattern = ""
    ranks: list[float] = []
    for index, segment in enumerate(template.split("/") if template else []):
        if not segment:
            raise RouteError(f"route {template!r} has an empty segment")
        parts: list[str] = []
        position = 0
        segment_params: list[_Param] = []
        for token in _TOKEN.finditer(segment):
            parts.append(re.escape(segment[position : token.start()]))
            param = _parse_param(token.group(1), template)
            if param.name.lower() in (p.lower() for p in params):
                raise RouteError(f"route {template!r} repeats parameter {param.name!r}")
            params[param.name] = param
            segment_params.append(param)
            parts.append(
                f"(?P<{param.name}>.*)" if param.catch_all else f"(?P<{param.name}>[^/]+?)"
            )
            position = token.end()
        parts.append(re.escape(segment[position:]))
        body = "".join(parts)
        separator = "/" if index else ""
        lone = len(segment_params) == 1 and _TOKEN.fullmatch(segment) is not None
        if (lone and (segment_params[0].optional or segment_params[0].default is not None)) or (
            lone and segment_params[0].catch_all
        ):
            pattern += f"(?:{separator}{body})?"
        else:
            pattern += separator + body
        if not segment_params:
            ranks.append(1)
        elif not lone:
            ranks.append(2)
        elif segment_params[0].catch_all:
            ranks.append(5)
        elif segment_params[0].checks:
            ranks.append(3)
        else:
            ranks.append(4)
    return re.compile(pattern, re.IGNORECASE), params, tuple(ranks)


def _parse_param(token: str, template: str) -> _Param:
    found = _PARAM.match(token.strip())
    if not found:
        raise RouteError(f"route {template!r}: bad parameter {{{token}}}")
    star, name, constraints, optional, default = found.groups()
    checks = tuple(_constraint(c.group(1), c.group(2)) for c in _CONSTRAINT.finditer(constraints))
    return _Param(
        name=name,
        checks=checks,
        optional=bool(optional),
        default=default,
        catch_all=bool(star),
    )


def check_not_reserved(route: str) -> None:
    """Refuse routes under `admin`, which the Functions host reserves for itself."""
    first = route.strip("/").split("/", 1)[0].lower()
    if first == RESERVED_PREFIX:
        raise RouteError(
            f"route '{route}' conflicts with one or more built in routes "
            "(the 'admin' prefix is reserved by the Functions host)"
        )


def check_webhook_route(route: str, webhook: str) -> None:
    """Refuse a webhook route that does not compile or whose route values differ from the
    function's own route's (the function must get the same values on either path)."""
    webhook_params = {name.lower() for name in Route(webhook, None, None).params}
    route_params = {name.lower() for name in Route(route, None, None).params}
    if webhook_params != route_params:
        raise RouteError(
            f"{WEBHOOK_FIELD} '{webhook}' must have the parameters of route '{route}' "
            f"({', '.join(sorted(route_params)) or 'none'})"
        )


@dataclass(frozen=True)
class RouteMatch:
    """The route that serves a request and its route values."""

    route: Route
    values: dict[str, str]


class Router:
    """The HTTP-triggered functions' routes, matched in ASP.NET precedence order."""

    def __init__(self, prefix: str = "api") -> None:
        self.prefix = prefix.strip("/")
        self._routes: list[Route] = []
        self._webhooks: list[Route] = []

    @property
    def routes(self) -> list[Route]:
        """All routes in match order."""
        return list(self._routes)

    def add(self, template: str, methods: Iterable[str] | None, target: Any) -> Route:
        """Compile and add a route."""
        method_set = frozenset(m.upper() for m in methods) if methods else None
        route = Route(template, method_set, target)
        self._routes.append(route)
        self._routes.sort(key=_match_order)
        return route

    def add_webhook(self, template: str, methods: Iterable[str] | None, target: Any) -> Route:
        """Compile and add a route below `/runtime/webhooks/` (outside the route prefix)."""
        method_set = frozenset(m.upper() for m in methods) if methods else None
        route = Route(template, method_set, target)
        self._webhooks.append(route)
        self._webhooks.sort(key=_match_order)
        return route

    def strip_prefix(self, path: str) -> str | None:
        """The path below the route prefix, or None when it is outside it."""
        path = path.strip("/")
        if not self.prefix:
            return path
        if path.lower() == self.prefix.lower():
            return ""
        if path.lower().startswith(self.prefix.lower() + "/"):
            return path[len(self.prefix) + 1 :]
        return None

    def match(self, method: str, path: str) -> tuple[RouteMatch | None, bool]:
        """(match, path_known): the route for method+path, and whether any route had the path.

        Paths below `/runtime/webhooks/` are the host's: only webhook routes serve them.
        """
        routes = self._routes
        relative = path.strip("/")
        if relative.lower().startswith(WEBHOOK_ROOT + "/"):
            relative, routes = relative[len(WEBHOOK_ROOT) + 1 :], self._webhooks
        else:
            stripped = self.strip_prefix(path)
            if stripped is None:
                return None, False
            relative = stripped
        path_known = False
        for route in routes:
            values = route.match(relative)
            if values is None:
                continue
            path_known = True
            if route.allows(method):
                return RouteMatch(route, values), True
        return None, path_known


def _match_order(route: Route) -> tuple[tuple[float, ...], int]:
    return route.precedence, -len(route.precedence)
