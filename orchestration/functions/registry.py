"""The app's orchestrators and activities, by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestration.core.entities import entity_function_of
from orchestration.storage.names import validate_function_name

if TYPE_CHECKING:
    from orchestration.bindings.apply import Binding


@dataclass(frozen=True, slots=True)
class ActivityDefinition:
    name: str
    function: Callable[..., Any]
    input_name: str | None
    is_async: bool
    # Storage bindings declared on the activity, applied around each run (activity_bindings).
    bindings: tuple[Binding, ...] = ()


class DuplicateFunctionError(ValueError):
    """Two orchestrators (or two activities) registered under one name."""


class Registry:
    """Names to functions; what the workers resolve history and messages against."""

    def __init__(self) -> None:
        self.orchestrators: dict[str, Callable[..., Any]] = {}
        self.activities: dict[str, ActivityDefinition] = {}
        self.entities: dict[str, Callable[..., Any]] = {}  # by lower-case name

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
        self,
        name: str,
        function: Callable[..., Any],
        input_name: str | None = None,
        bindings: tuple[Binding, ...] = (),
    ) -> None:
        validate_function_name(name, "Activity name")
        existing = self.activities.get(name)
        if existing is not None and existing.function is not function:
            raise DuplicateFunctionError(f"Activity {name!r} is registered twice.")
        self.activities[name] = ActivityDefinition(
            name, function, input_name, inspect.iscoroutinefunction(function), bindings
        )

    def add_entity(self, name: str, function: Callable[..., Any]) -> None:
        validate_function_name(name, "Entity name")
        if inspect.iscoroutinefunction(function):
            raise TypeError(f"Entity {name!r} is an async function; entity functions are plain "
                            f"functions (as in azure-functions-durable).")  # fmt: skip
        key = name.lower()
        if key in self.entities and self.entities[key] is not function:
            raise DuplicateFunctionError(f"Entity {name!r} is registered twice.")
        self.entities[key] = function

    def entity(self, name: str) -> Callable[..., Any] | None:
        function = self.entities.get(name.lower())
        return entity_function_of(function) if function is not None else None

    def merge(self, other: Registry) -> None:
        for name, entity in other.entities.items():
            self.add_entity(name, entity)
        for name, function in other.orchestrators.items():
            self.add_orchestrator(name, function)
        for name, activity in other.activities.items():
            self.add_activity(name, activity.function, activity.input_name, activity.bindings)

    def rename(self, kind: str, old: str, new: str) -> None:
        """Register under `new` what `kind` ("orchestration", "activity" or "entity") `old`
        is (`@app.function_name` stacked on a durable trigger names it, as in DF)."""
        if kind == "orchestration":
            function = self.orchestrators.pop(old)
            self.add_orchestrator(new, function)
        elif kind == "activity":
            activity = self.activities.pop(old)
            self.add_activity(new, activity.function, activity.input_name, activity.bindings)
        else:
            self.add_entity(new, self.entities.pop(old.lower()))

    def orchestrator(self, name: str) -> Callable[..., Any] | None:
        return self.orchestrators.get(name)

    def describe_orchestrators(self) -> str:
        return ", ".join(sorted(self.orchestrators)) or "(none)"
