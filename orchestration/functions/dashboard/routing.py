"""Matching a path against the management API's route templates (`{name}`, `{name?}`).

The dashboard's API runs a management handler for a path below `dashboard-api/`; the host
did that matching for the keyed routes, so this small table does it for the session ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class _Template:
    method: str
    segments: tuple[str, ...]
    handler: Any

    def match(self, path: Sequence[str]) -> dict[str, str] | None:
        params: dict[str, str] = {}
        template = self.segments
        if len(path) > len(template):
            return None
        for index, part in enumerate(template):
            optional = part.startswith("{") and part.endswith("?}")
            if index >= len(path):
                return params if optional and index == len(template) - 1 else None
            value = path[index]
            if part.startswith("{") and part.endswith("}"):
                if not value:
                    return None
                params[part.strip("{}?")] = value
            elif part.lower() != value.lower():
                return None
        return params


class RouteTable:
    """(route, method, handler) templates; literal segments match case-insensitively."""

    def __init__(self, routes: Sequence[tuple[str, str, Any]]) -> None:
        self._templates = [
            _Template(method.upper(), tuple(route.strip("/").split("/")), handler)
            for route, method, handler in routes
        ]

    def match(
        self, method: str, path: Sequence[str]
    ) -> tuple[Any, dict[str, str]] | list[str] | None:
        """(handler, route values) of the first template for `method` that matches; else the
        methods other templates take for that path (a 405), or None (a 404). Literal
        segments win over parameters, as ASP.NET's routing prefers them."""
        ranked = sorted(
            self._templates,
            key=lambda t: [0 if not s.startswith("{") else 1 for s in t.segments],
        )
        others: list[str] = []
        for template in ranked:
            params = template.match(path)
            if params is None:
                continue
            if template.method == method:
                return template.handler, params
            if template.method not in others:
                others.append(template.method)
        return others or None
