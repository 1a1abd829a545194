"""Blob and table input/output bindings: thin handlers over `orchestration.bindings.apply`,
the semantics the engine gives activities' bindings too.

A binding's expressions resolve against its invocation's binding data (the trigger's
metadata) with the invocation's one set of system values, `%Setting%` references against the
app settings and `connection` names against them as the host looks connection strings up.
"""

from __future__ import annotations

from typing import Any

from orchestration.bindings.apply import (
    Binding,
    BindingError,
    BindingScope,
    check,
    parameter_type,
    read_input,
    write_output,
)
from orchestration.bindings.expressions import BindingExpressionError, split_blob_path
from orchestration.host.app_loader import BindingSpec, FunctionSpec
from orchestration.host.bindings import (
    BindingConfigError,
    BindingHandler,
    HostContext,
    Invocation,
    UnsupportedBindingError,
)
from orchestration.host.settings import HostConfigError


def to_binding(spec: BindingSpec) -> Binding:
    """The shared binding model of a function.json binding."""
    return Binding(spec.name, spec.type, spec.direction, spec.data)


def parameter_annotation(function: FunctionSpec, name: str) -> Any:
    """A binding parameter's annotation, `Optional[T]` read as `T` (a missing blob or entity
    is None whatever the annotation says)."""
    return parameter_type(function.annotations.get(name))


def binding_scope(invocation: Invocation, host: HostContext) -> BindingScope:
    """What one invocation's bindings resolve against: its trigger's binding data and system
    values, the host's settings, connections, SDK stores and queue encoding."""
    return BindingScope(
        data=invocation.trigger_metadata,
        setting=host.resolve,
        connection=host.connection_string,
        stores=host.binding_stores,
        queue_encoding=host.host_json.queues.message_encoding,
        system=invocation.system,
    )


def available_binding_data(function: FunctionSpec, host: HostContext) -> set[str] | None:
    """The names the function's trigger always provides, None when its payload decides."""
    try:
        trigger = host.invoker.registry.trigger(function.trigger.type)
    except UnsupportedBindingError:
        return None
    return trigger.binding_data_names(function, host)


def check_storage_binding(function: FunctionSpec, spec: BindingSpec, host: HostContext) -> None:
    """Start-up validation of a blob, table or queue binding; BindingConfigError naming the
    binding (the registry adds the function)."""

    def named(err: Exception) -> BindingConfigError:
        return BindingConfigError(f"binding '{spec.name}': {err}")

    def setting(value: str) -> str:
        try:
            return host.resolve(value)
        except BindingConfigError as err:
            raise named(err) from err

    def connection(name: str | None) -> str:
        try:
            return host.connection_string(name)
        except BindingConfigError as err:
            raise named(err) from err

    try:
        check(
            to_binding(spec),
            setting,
            connection,
            available_binding_data(function, host),
            targets=True,
        )
    except (BindingError, HostConfigError) as err:
        raise BindingConfigError(str(err)) from err


def blob_container_of(spec: BindingSpec, scope: BindingScope) -> str | None:
    """The container a blob binding's path resolves to in this scope (None when it cannot)."""
    try:
        return split_blob_path(scope.text(to_binding(spec), "path") or "")[0]
    except (BindingError, BindingExpressionError):
        return None


class StorageBindingHandler(BindingHandler):
    """Shared by the `blob` and `table` binding types: validate at start, read or write per
    invocation through `bindings.apply`."""

    directions: tuple[str, ...] = ("in", "out")

    def validate(self, function: FunctionSpec, binding: BindingSpec, host: HostContext) -> None:
        if binding.direction not in self.directions:
            raise BindingConfigError(
                f"binding '{binding.name}': a {binding.type} binding is 'in' or 'out' "
                f"(the Python worker has no {binding.direction!r} {binding.type} binding)"
            )
        check_storage_binding(function, binding, host)

    async def bind_input(
        self, binding: BindingSpec, invocation: Invocation, host: HostContext
    ) -> Any:
        annotation = parameter_annotation(invocation.function, binding.name)
        return await read_input(to_binding(binding), binding_scope(invocation, host), annotation)

    async def write_output(
        self, binding: BindingSpec, value: Any, invocation: Invocation, host: HostContext
    ) -> None:
        await write_output(to_binding(binding), value, binding_scope(invocation, host))


class BlobBindingHandler(StorageBindingHandler):
    """`blob` input (func.InputStream, bytes or str; None for a missing blob) and output (str,
    bytes or a readable stream). A write wakes this process's blob triggers on the container."""

    async def write_output(
        self, binding: BindingSpec, value: Any, invocation: Invocation, host: HostContext
    ) -> None:
        scope = binding_scope(invocation, host)
        await write_output(to_binding(binding), value, scope)
        container = blob_container_of(binding, scope)
        if container is not None:
            host.blob_notifier.notify(container)


class TableBindingHandler(StorageBindingHandler):
    """`table` input (one entity, or a partition/filter/take query, as a JSON string) and
    output (an entity or a list of them, keys from the entity or the binding)."""
