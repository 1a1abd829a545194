"""What the durable decorators hand back: `FunctionBuilder`s, as azure-functions-durable's do.

DF's documented unit tests reach the user's code through them:
`my_orchestrator.build().get_user_function().orchestrator_function`,
`my_entity.build().get_user_function().entity_function`, `say_hello.build().get_user_function()`
and, for a starter, `http_start.build().get_user_function().client_function`. An
orchestrator, activity or entity is no Function of its own here (the engine's queue triggers
run it), so its builder is never indexed; calling it calls the user's function, as before.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azure.functions.decorators.core import SCRIPT_FILE_NAME
from azure.functions.decorators.function_app import Function, FunctionBuilder

from orchestration.core.function_refs import REGISTERED_NAME
from orchestration.functions.activity_bindings import declared_bindings
from orchestration.functions.settings import _resolve

if TYPE_CHECKING:
    from orchestration.functions.engine import Engine
    from orchestration.functions.registry import Registry

# On a starter's wrapper: the `ClientSpec` of its `durable_client_input`.
CLIENT_SPEC = "__durable_client__"

KINDS = {"orchestration": "orchestrator", "activity": "activity", "entity": "entity"}


def mark(target: Any, **attributes: Any) -> None:
    """Set attributes on the user's function where it takes them (a bound method does not)."""
    for key, value in attributes.items():
        with contextlib.suppress(AttributeError, TypeError):
            setattr(target, key, value)


class DurableFunctionBuilder(FunctionBuilder):
    """The builder of an orchestrator, activity or entity: holds the user's function."""

    def __init__(
        self, function: Callable[..., Any], kind: str, name: str, registry: Registry
    ) -> None:
        super().__init__(function, SCRIPT_FILE_NAME)  # type: ignore[no-untyped-call]
        functools.update_wrapper(self, function, updated=())
        self.kind = kind
        self.registered_name = name
        self._registry = registry
        mark(self, **{REGISTERED_NAME: name})
        mark(function, **{REGISTERED_NAME: name})

    def build(self, auth_level: Any = None) -> Function:
        """The Function holding the user's code; no trigger to check: it is not indexed."""
        return self._function

    def restack(self, wrap: Callable[[FunctionBuilder], Any]) -> DurableFunctionBuilder:
        """Apply a decorator stacked above the durable trigger: `@app.function_name` renames
        the function (as in DF); an activity takes storage bindings; no trigger applies."""
        function = self._function
        trigger, bindings = function.get_trigger(), len(function.get_bindings())
        wrap(self)
        kind = KINDS[self.kind]
        added = len(function.get_bindings()) != bindings
        if added and self.kind == "activity" and function.get_trigger() is trigger:
            activity = self._registry.activities[self.registered_name]
            declared = declared_bindings(
                function, self.registered_name, activity.function, activity.input_name
            )
            self._registry.add_activity(
                activity.name, activity.function, activity.input_name, declared
            )
        elif function.get_trigger() is not trigger or added:
            raise TypeError(
                f"{self.registered_name!r} is an {kind} function: the engine runs it, so it "
                f"takes no trigger or binding of its own. Put @app.route (or another trigger) "
                f"on a separate function that starts it with @app.durable_client_input."
            )
        renamed = function.get_function_name()
        if renamed and renamed != self.registered_name:
            self._registry.rename(self.kind, self.registered_name, renamed)
            self.registered_name = renamed
            mark(self, **{REGISTERED_NAME: renamed})
            mark(function.get_user_function(), **{REGISTERED_NAME: renamed})
        return self


@dataclass(frozen=True)
class ClientSpec:
    """A `durable_client_input`'s arguments and where its engine will be."""

    engine_ref: list[Engine]
    task_hub: str | None
    connection_name: str | None

    def problem(self, function_name: str) -> str | None:
        """Why the starter `function_name` cannot get its client, if it cannot (index time)."""
        if not self.engine_ref:
            return (
                f"function {function_name!r} takes a durable client, but no app runs the "
                f"engine for its Blueprint: register the Blueprint with "
                f"`app.register_functions(bp)` on an `orchestration.DFApp` or an "
                f"`azure.functions.FunctionApp`."
            )
        settings = self.engine_ref[0].settings
        if self.task_hub is not None and _resolve(self.task_hub).lower() != (
            settings.hub_name.lower()
        ):
            return (
                f"function {function_name!r}: durable_client_input(task_hub="
                f"{self.task_hub!r}) names another task hub than this app's "
                f"({settings.hub_name!r}, host.json extensions.durableTask.hubName); a client "
                f"of another app's hub is not supported: drop task_hub=, or call that app's "
                f"HTTP API."
            )
        if self.connection_name is not None and self.connection_name != (settings.connection_name):
            return (
                f"function {function_name!r}: durable_client_input(connection_name="
                f"{self.connection_name!r}) names another storage connection than this "
                f"app's ({settings.connection_name!r}, host.json extensions.durableTask."
                f"storageProvider.connectionStringName); drop connection_name=."
            )
        return None

    def engine(self) -> Engine:
        if not self.engine_ref:  # the index-time check (CheckedBuilder) makes this rare
            raise RuntimeError(self.problem("this starter") or "no engine")
        return self.engine_ref[0]


class CheckedBuilder(FunctionBuilder):
    """The builder of an ordinary Function of a durable app: a starter whose durable client
    cannot work fails the app's indexing (start-up), never its requests."""

    def build(self, auth_level: Any = None) -> Function:
        spec = getattr(self._function.get_user_function(), CLIENT_SPEC, None)
        # An app's get_functions passes its auth level; a unit test's bare `.build()` (DF's
        # pattern, with a mocked client and no app) is not indexing, so nothing to check.
        if isinstance(spec, ClientSpec) and auth_level is not None:
            problem = spec.problem(str(self._function.get_function_name()))
            if problem is not None:
                raise ValueError(problem)
        built: Function = super().build(auth_level)  # type: ignore[no-untyped-call]
        return built
