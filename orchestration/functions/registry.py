"""The app's orchestrators and activities, by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestration.storage.names import validate_function_name


@dataclass(frozen=True, slots=True)
class ActivityDefinition:
    name: str
    function: Callable[..., Any]
    input_name: str | None
    is_async: bool


class DuplicateFunctionError(ValueError):
    """Two orchestrators (or two activities) registered under one name."""


class Registry:
    """Names to functions; what the workers resolve history and messages against."""

    def __init__(self) -> None:
        self.orchestrators: dict[str, Callable[..., Any]] = {}
        self.activities: dict[str, ActivityDefinition] = {}

    def add_orchestrator(self, name: str, function: Callable[..., Any]) -> None:
        validate_function_name(name, "Orchestrator name")
        if inspect.iscoroutinefunction(function):
            raise TypeError(
                f"Orchestrator {name!r} is an async function; orchestrators are generator "
                f"functions that `yield` durable tasks (as in azure-functions-durable)."
            )
        if name in self.orchestrators and self.orchestrators[name] is not function:
            raise DuplicateFunctionError(f"Orchestrator {name!r} is registered twice.")
        self.orchestrators[name] = function

    def add_activity(
        self, name: str, function: Callable[..., Any], input_name: str | None = None
    ) -> None:
        validate_function_name(name, "Activity name")
        existing = self.activities.get(name)
        if existing is not None and existing.function is not function:
            raise DuplicateFunctionError(f"Activity {name!r} is registered twice.")
        self.activities[name] = ActivityDefinition(
            name, function, input_name, inspect.iscoroutinefunction(function)
        )

    def merge(self, other: Registry) -> None:
        for name, function in other.orchestrators.items():
            self.add_orchestrator(name, function)
        for name, activity in other.activities.items():
            self.add_activity(name, activity.function, activity.input_name)

    def orchestrator(self, name: str) -> Callable[..., Any] | None:
        return self.orchestrators.get(name)

    def describe_orchestrators(self) -> str:
        return ", ".join(sorted(self.orchestrators)) or "(none)"
