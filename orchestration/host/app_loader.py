"""Import a v2 function app and index it through `get_functions()`, as the Python worker does."""

from __future__ import annotations

import functools
import importlib.util
import inspect
import json
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func

SCRIPT_FILE = "function_app.py"


class AppLoadError(RuntimeError):
    """The app could not be imported or indexed; the message names the function at fault."""


@dataclass(frozen=True)
class BindingSpec:
    """One binding of a function, as in function.json (`name`, `type`, `direction`, ...)."""

    name: str
    type: str
    direction: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        """A binding property by case-insensitive name."""
        for k, v in self.data.items():
            if k.lower() == key.lower():
                return v
        return default

    @property
    def is_input(self) -> bool:
        """Direction in (or inout)."""
        return self.direction in ("in", "inout")

    @property
    def is_output(self) -> bool:
        """Direction out (or inout)."""
        return self.direction in ("out", "inout")


@dataclass(frozen=True)
class FunctionSpec:
    """An indexed function: its trigger, its other bindings and the Python callable."""

    name: str
    trigger: BindingSpec
    bindings: tuple[BindingSpec, ...]
    func: Callable[..., Any]
    is_async: bool
    parameters: tuple[str, ...]
    annotations: Mapping[str, Any]
    function_json: Mapping[str, Any]

    @property
    def other_bindings(self) -> tuple[BindingSpec, ...]:
        """Every binding except the trigger."""
        return tuple(b for b in self.bindings if b is not self.trigger)

    @functools.cached_property
    def uses_binding_data(self) -> bool:
        """Whether any binding besides the trigger holds a `{...}` expression (else the
        trigger need not build binding data from its payload)."""
        return any(
            isinstance(value, str) and "{" in value
            for binding in self.other_bindings
            for value in binding.data.values()
        )

    @property
    def wants_context(self) -> bool:
        """The function declares a `context` parameter that no binding fills."""
        return "context" in self.parameters and all(b.name != "context" for b in self.bindings)


def import_app_module(app_dir: Path) -> Any:
    """Import DIR/function_app.py with DIR on sys.path, as the worker does."""
    script = app_dir / SCRIPT_FILE
    if not script.exists():
        raise AppLoadError(f"{script} not found: the app directory must contain {SCRIPT_FILE}")
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    spec = importlib.util.spec_from_file_location("function_app", script)
    if spec is None or spec.loader is None:
        raise AppLoadError(f"cannot import {script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["function_app"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        hint = ""
        if "azure-functions-durable" in str(err):  # a durable decorator on func.FunctionApp
            hint = (
                " With orchestration, create the app as `app = orchestration.DFApp()`, or put "
                "the durable functions on an `orchestration.Blueprint` registered with "
                "`app.register_functions(bp)`."
            )
        raise AppLoadError(f"importing {script} failed: {type(err).__name__}: {err}{hint}") from err
    return module


def find_app(module: Any) -> func.FunctionRegister:
    """The module's FunctionApp: the one FunctionRegister instance among its globals."""
    apps = [v for v in vars(module).values() if isinstance(v, func.FunctionRegister)]
    if not apps:
        raise AppLoadError(f"{SCRIPT_FILE} defines no FunctionApp (e.g. app = func.FunctionApp())")
    if len(apps) > 1:
        named = getattr(module, "app", None)
        if isinstance(named, func.FunctionRegister):
            return named
        raise AppLoadError(f"{SCRIPT_FILE} defines {len(apps)} FunctionApps; keep one")
    return apps[0]


def _binding_specs(function: Any) -> tuple[BindingSpec, tuple[BindingSpec, ...], dict[str, Any]]:
    document: dict[str, Any] = json.loads(function.get_function_json())
    specs = [
        BindingSpec(
            name=str(raw["name"]),
            type=str(raw["type"]),
            direction=str(raw.get("direction", "in")).lower(),
            data=raw,
        )
        for raw in document.get("bindings", [])
    ]
    trigger_name = function.get_trigger().get_dict_repr()["name"]
    trigger = next(s for s in specs if s.name == trigger_name and s.direction == "in")
    return trigger, tuple(specs), document


def _check_parameters(
    name: str, parameters: tuple[str, ...], bindings: tuple[BindingSpec, ...]
) -> None:
    declared = {b.name for b in bindings if b.name != "$return"}
    extra = [p for p in parameters if p not in declared and p != "context"]
    if extra:
        raise AppLoadError(
            f"cannot load the {name} function: the following parameters are declared in "
            f"Python but not as bindings: {sorted(extra)}"
        )
    missing = sorted(declared - set(parameters))
    if missing:
        raise AppLoadError(
            f"cannot load the {name} function: the following bindings have no matching "
            f"Python parameter: {missing}"
        )


def index_app(app: func.FunctionRegister) -> list[FunctionSpec]:
    """Index the app (calls get_functions() once) into FunctionSpecs, checking parameters."""
    try:
        functions = app.get_functions()
    except ValueError as err:
        raise AppLoadError(f"indexing the app failed: {err}") from err
    specs: list[FunctionSpec] = []
    for function in functions:
        name = str(function.get_function_name())
        trigger, bindings, document = _binding_specs(function)
        user_function = function.get_user_function()
        signature = inspect.signature(user_function)
        parameters = tuple(signature.parameters)
        _check_parameters(name, parameters, bindings)
        try:
            annotations = typing.get_type_hints(user_function)
        except Exception:  # unresolvable forward references: fall back to raw annotations
            annotations = dict(getattr(user_function, "__annotations__", {}))
        specs.append(
            FunctionSpec(
                name=name,
                trigger=trigger,
                bindings=bindings,
                func=user_function,
                is_async=inspect.iscoroutinefunction(user_function),
                parameters=parameters,
                annotations=annotations,
                function_json=document,
            )
        )
    return specs


def load_app(app_dir: Path) -> list[FunctionSpec]:
    """Import DIR/function_app.py and index its app."""
    return index_app(find_app(import_app_module(app_dir)))
