"""Storage bindings on activities: blob, table and queue bindings declared with azure-functions'
decorators on an activity, applied by the engine around each run.

An activity is no Function of its own here (the engine's work-item trigger runs it), so the
Functions host never sees these bindings; the engine resolves them with the same semantics
(`orchestration.bindings.apply`), the same way whether the activity runs in the
orchestrator's process or from the work-item queue. Inputs are read just before each run and
outputs written only after it succeeded, before its result is recorded: a retried or re-run
activity writes its outputs again (at least once).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.functions.decorators.utils import StringifyEnumJsonEncoder

from orchestration.bindings.apply import (
    Binding,
    BindingError,
    BindingScope,
    OutValue,
    check,
    is_storage_binding,
    parameter_type,
    read_input,
    write_output,
)
from orchestration.bindings.expressions import (
    BindingExpressionError,
    SystemValues,
    binding_data_of,
    resolve_settings,
)
from orchestration.bindings.store import BindingStores, connection_setting


def _no_connection_check(connection: str | None) -> str:
    return ""


def declared_bindings(
    function: Any, activity: str, user_function: Callable[..., Any], input_name: str | None
) -> tuple[Binding, ...]:
    """The storage bindings azure-functions' decorators put on an activity's Function, checked
    as far as can be without app settings; TypeError for anything an activity cannot take."""
    found: list[Binding] = []
    for declared in function.get_bindings():
        raw: dict[str, Any] = json.loads(
            json.dumps(declared.get_dict_repr(), cls=StringifyEnumJsonEncoder)
        )
        kind, name = str(raw.get("type", "")), str(raw.get("name", ""))
        if kind.lower().endswith("trigger"):
            raise TypeError(
                f"activity {activity!r}: the engine triggers activities, so it takes no "
                f"{kind} of its own; put the trigger on a separate function that starts an "
                f"orchestration with @app.durable_client_input."
            )
        if not is_storage_binding(kind):
            raise TypeError(
                f"activity {activity!r}: binding {name!r} of type {kind!r} is not supported on "
                f"activities (blob, table and queue bindings are)."
            )
        if name == "$return":
            raise TypeError(
                f"activity {activity!r}: an activity's return value is its result for the "
                f"orchestrator, so it cannot feed the {kind} binding; give the binding an "
                f"arg_name and set it through a func.Out parameter."
            )
        if name == input_name:
            raise TypeError(
                f"activity {activity!r}: binding {name!r} has the name of the activity's input"
            )
        if not _has_parameter(user_function, name):
            raise TypeError(
                f"activity {activity!r}: the {kind} binding {name!r} names no parameter of "
                f"the function."
            )
        direction = str(raw.get("direction", "in")).lower()
        properties = {k: v for k, v in raw.items() if k not in ("type", "name", "direction")}
        binding = Binding(name, kind, direction, properties)
        try:
            check(binding, lambda value: value, _no_connection_check)
        except BindingError as err:
            raise TypeError(f"activity {activity!r}: {err}") from None
        found.append(binding)
    return tuple(found)


def _has_parameter(function: Callable[..., Any], name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return True
    return name in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


@functools.lru_cache(maxsize=1024)
def _annotations(function: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function)
    except Exception:  # unresolvable forward references: the raw annotations
        return dict(getattr(function, "__annotations__", {}))


def binding_data(input_name: str | None, payload: Any, instance_id: str) -> dict[str, Any]:
    """What an activity's binding expressions resolve against, as DF's activity trigger
    offers: the input's top-level properties, the input under its parameter name, and
    `instanceId`."""
    if isinstance(payload, Mapping) and "__class__" in payload and "__data__" in payload:
        # A custom class travels as DF's envelope: expressions see its own properties.
        with contextlib.suppress(TypeError, ValueError):
            payload = json.loads(payload["__data__"])
    data = binding_data_of(payload)
    if input_name:
        data[input_name] = payload
    data["instanceId"] = instance_id
    return data


@dataclass
class PreparedBindings:
    """One run's bindings: the parameters to pass and the outputs to write after success."""

    scope: BindingScope
    arguments: dict[str, Any] = field(default_factory=dict)
    outputs: list[tuple[Binding, OutValue]] = field(default_factory=list)

    async def deliver(self) -> None:
        """Write what the activity set on its output bindings."""
        for binding, out in self.outputs:
            if out.is_set:
                await write_output(binding, out.get(), self.scope)


class ActivityBindings:
    """Applies activities' bindings with the app settings of this process."""

    def __init__(
        self, queue_encoding: str = "base64", environ: Mapping[str, str] | None = None
    ) -> None:
        self.queue_encoding = queue_encoding
        self.environ = environ if environ is not None else os.environ
        self.stores = BindingStores()

    def setting(self, value: str) -> str:
        """`value` with its `%Name%` references replaced by app settings."""
        try:
            return resolve_settings(value, self.environ)
        except BindingExpressionError as err:
            raise BindingError(str(err)) from err

    def connection(self, name: str | None) -> str:
        """The connection string a binding's `connection` names (AzureWebJobsStorage when
        none), as the Functions host looks it up."""
        setting, value = connection_setting(self.environ, name)
        if value:
            return value
        raise BindingError(
            f"storage connection {setting!r} does not exist: set the app setting {setting!r} "
            f"to a connection string"
        )

    def check(self, activity: str, bindings: tuple[Binding, ...]) -> None:
        """Refuse, when the app is indexed, bindings whose settings do not exist."""
        for binding in bindings:
            try:
                check(binding, self.setting, self.connection)
            except BindingError as err:
                raise ValueError(f"activity {activity!r}: {err}") from None

    async def prepare(
        self,
        function: Callable[..., Any],
        bindings: tuple[Binding, ...],
        data: Mapping[str, Any],
    ) -> PreparedBindings:
        """Read the input bindings and make the output parameters of one run."""
        scope = BindingScope(
            data=data,
            setting=self.setting,
            connection=self.connection,
            stores=self.stores,
            queue_encoding=self.queue_encoding,
            system=SystemValues.now(),
        )
        prepared = PreparedBindings(scope)
        annotations = _annotations(function)
        for binding in bindings:
            if binding.direction == "out":
                out = OutValue()
                prepared.arguments[binding.name] = out
                prepared.outputs.append((binding, out))
            else:
                prepared.arguments[binding.name] = await read_input(
                    binding, scope, parameter_type(annotations.get(binding.name))
                )
        return prepared

    async def aclose(self) -> None:
        await self.stores.close()
