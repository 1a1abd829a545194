"""What `call_activity(name)` and `call_sub_orchestrator(name)` accept besides a name.

In the v2 programming model an orchestrator may pass the decorated function itself, as in
azure-functions-durable: a `FunctionBuilder`, or the plain function our decorators leave. Its
return annotation, when it is a class, is the type its result is rebuilt as.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

# Set by the durable decorators on the user's function: the name it is registered under.
REGISTERED_NAME = "__durable_name__"
# Set by `orchestration_trigger(input_type=...)`: the class the orchestration input is rebuilt as.
INPUT_TYPE = "__durable_input_type__"


def _user_function(reference: Any) -> Callable[..., Any] | None:
    inner = getattr(getattr(reference, "_function", None), "_func", None)
    if callable(inner):
        return typing.cast("Callable[..., Any]", inner)  # a FunctionBuilder
    return reference if callable(reference) and not isinstance(reference, str) else None


def function_name(reference: Any, kind: str) -> str:
    """The registered name of `reference` (a name, or a function decorated as `kind`)."""
    if isinstance(reference, str):
        return reference
    for candidate in (reference, _user_function(reference)):
        name = getattr(candidate, REGISTERED_NAME, None)
        if isinstance(name, str):
            return name
    shown = getattr(reference, "__name__", None) or type(reference).__name__
    raise ValueError(
        f"{shown!r} is not a registered {kind} function: decorate it with "
        f"`@app.{kind}_trigger(...)` or pass the {kind}'s name as a string."
    )


@functools.lru_cache(maxsize=1024)
def _return_class(function: Callable[..., Any]) -> type | None:
    try:
        annotation = typing.get_type_hints(function).get("return")
    except Exception:  # unresolvable forward references: no type to offer
        annotation = inspect.signature(function).return_annotation
    return annotation if isinstance(annotation, type) else None


def output_type(reference: Any) -> type | None:
    """The class `reference`'s result is rebuilt as: its return annotation, if a class."""
    function = None if isinstance(reference, str) else _user_function(reference)
    if function is None:
        return None
    try:
        return _return_class(function)
    except (TypeError, ValueError):  # unhashable or no signature
        return None


@functools.lru_cache(maxsize=1024)
def _parameter_class(function: Callable[..., Any], parameter: str | None) -> type | None:
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # unresolvable forward references: no type to offer
        hints = {}
    if parameter is None:
        names = [n for n in inspect.signature(function).parameters if n != "return"]
        parameter = names[0] if names else None
    annotation = hints.get(parameter) if parameter is not None else None
    return annotation if isinstance(annotation, type) else None


def input_type(function: Callable[..., Any], parameter: str | None) -> type | None:
    """The class an activity's input parameter is annotated with, if any: what its input is
    rebuilt as (the azure-functions activity converter's rule)."""
    try:
        return _parameter_class(function, parameter)
    except (TypeError, ValueError):  # unhashable or no signature
        return None
