"""Resolve and apply one storage binding (blob, table, queue): the semantics both the local
host (for ordinary Functions) and the engine (for activities) give them.

A binding is what azure-functions' decorators write to function.json: `type`, `direction`,
`name` and the type's properties (`path`, `tableName`, `partitionKey`, `rowKey`, `filter`,
`take`, `queueName`, `connection`, `dataType`). Properties may hold `%Setting%` references
and binding expressions (see `expressions`).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func

from orchestration.bindings import values
from orchestration.bindings.expressions import (
    BindingExpressionError,
    SystemValues,
    parameters_of,
    resolve,
    split_blob_path,
)
from orchestration.bindings.store import (
    BindingConnectionError,
    BindingStore,
    BindingStores,
    BindingTargetError,
    check_container,
    check_queue,
    check_table,
    normalize_connection_string,
    odata_quote,
)

DIRECTIONS = {"blob": {"in", "out", "inout"}, "table": {"in", "out"}, "queue": {"out"}}
SYSTEM_PARAMETERS = {"rand-guid", "sys.randguid", "sys.utcnow", "datetime"}


class BindingError(ValueError):
    """A binding cannot be applied: bad configuration, or a value its expressions lack."""


@dataclass(frozen=True)
class Binding:
    """One declared binding; property names are matched case-insensitively."""

    name: str
    type: str
    direction: str
    properties: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        for k, v in self.properties.items():
            if k.lower() == key.lower():
                return v
        return default

    @property
    def kind(self) -> str:
        return self.type.lower()


@dataclass
class BindingScope:
    """What one invocation's bindings resolve against.

    `data`: the binding data (trigger parameters, a JSON input's properties, metadata);
    `setting`: resolves `%Name%` references; `connection`: a binding's `connection` name to
    its connection string; `queue_encoding`: host.json's queues messageEncoding.
    """

    data: Mapping[str, Any]
    setting: Callable[[str], str]
    connection: Callable[[str | None], str]
    stores: BindingStores
    queue_encoding: str = "base64"
    system: SystemValues = field(default_factory=SystemValues.now)

    def text(self, binding: Binding, key: str, *, odata: bool = False) -> str | None:
        raw = binding.get(key)
        if raw is None or raw == "":
            return None
        try:
            return resolve(
                self.setting(str(raw)),
                self.data,
                self.system,
                escape=odata_quote if odata else None,
            )
        except BindingExpressionError as err:
            raise BindingError(f"binding '{binding.name}': {err}") from err

    def store(self, binding: Binding) -> BindingStore:
        """The store of the binding's storage account."""
        try:
            return self.stores.get(self.connection(binding.get("connection")))
        except BindingConnectionError as err:
            raise BindingError(f"binding '{binding.name}': {err}") from err


class OutValue(func.Out[Any]):
    """The `func.Out[T]` a function's (or activity's) output-binding parameter receives."""

    def __init__(self) -> None:
        self._value: Any = None
        self._set = False

    def set(self, val: Any) -> None:
        """Store the value to deliver after the function succeeds."""
        self._value = val
        self._set = True

    def get(self) -> Any:
        """The value set so far (None when unset)."""
        return self._value

    @property
    def is_set(self) -> bool:
        """Whether the function called set()."""
        return self._set


def parameter_type(annotation: Any) -> Any:
    """A binding parameter's annotation with `Optional[T]` read as `T` (a missing blob or
    entity is None whatever the annotation says)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def is_storage_binding(binding_type: str) -> bool:
    return binding_type.lower() in DIRECTIONS


def check(binding: Binding, setting: Callable[[str], str], connection: Callable[[str | None], str],
          available: set[str] | None = None, *, targets: bool = False) -> None:  # fmt: skip
    """Refuse, at start-up, a binding that cannot work: unknown direction, missing properties,
    a connection setting that does not exist, an expression naming data that never exists
    (`available`: the binding data the trigger provides, when it is known); with `targets`,
    also a literal container, table or queue name that storage would refuse."""
    kind = binding.kind
    if binding.direction not in DIRECTIONS.get(kind, set()):
        raise BindingError(
            f"binding '{binding.name}': a {kind} binding cannot have direction "
            f"{binding.direction!r} (it takes {', '.join(sorted(DIRECTIONS.get(kind, ())))})"
        )
    required = {"blob": ("path",), "table": ("tableName",), "queue": ("queueName",)}[kind]
    for key in required:
        if not binding.get(key):
            raise BindingError(f"binding '{binding.name}': the {kind} binding needs {key!r}")
    conn_str = connection(binding.get("connection"))
    if conn_str:
        try:
            normalize_connection_string(conn_str)
        except BindingConnectionError as err:
            raise BindingError(f"binding '{binding.name}': {err}") from err
    if targets:
        _check_literal_target(binding, setting)
    for key in ("path", "tableName", "partitionKey", "rowKey", "filter", "queueName"):
        raw = binding.get(key)
        if not raw:
            continue
        try:
            names = parameters_of(setting(str(raw)))
        except BindingExpressionError as err:
            raise BindingError(f"binding '{binding.name}': {err}") from err
        if available is None:
            continue
        missing = [
            n for n in names if n.lower() not in SYSTEM_PARAMETERS and
            n.split(".")[0].lower() not in {a.lower() for a in available}
        ]  # fmt: skip
        if missing:
            raise BindingError(
                f"binding '{binding.name}': {key} {raw!r} uses {missing}, which the trigger "
                f"does not provide (it provides {sorted(available) or 'nothing'})"
            )
    if kind == "blob" and binding.direction == "in" and binding.get("take"):
        raise BindingError(f"binding '{binding.name}': 'take' applies to table bindings")
    take = binding.get("take")
    if kind == "table" and take not in (None, ""):
        try:
            if int(take) < 1:
                raise ValueError
        except (TypeError, ValueError):
            raise BindingError(
                f"binding '{binding.name}': take must be a positive integer"
            ) from None


def _check_literal_target(binding: Binding, setting: Callable[[str], str]) -> None:
    """A container, table or queue name without expressions can be checked before any run."""
    key = {"blob": "path", "table": "tableName", "queue": "queueName"}[binding.kind]
    raw = setting(str(binding.get(key) or ""))
    if "%" in raw:  # settings left for later (an activity's are resolved per run)
        return
    try:
        if binding.kind == "blob":
            container, _ = split_blob_path(raw)
            if "{" not in container:
                check_container(container)
        elif "{" not in raw:
            (check_table if binding.kind == "table" else check_queue)(raw)
    except (BindingExpressionError, BindingTargetError) as err:
        raise BindingError(f"binding '{binding.name}': {err}") from err


async def read_input(binding: Binding, scope: BindingScope, annotation: Any) -> Any:
    """The value a function's parameter receives for an input binding."""
    store = scope.store(binding)
    try:
        if binding.kind == "blob":
            container, name = _blob_target(binding, scope)
            content = await store.read_blob(container, name)
            return values.blob_parameter(content, annotation, binding.get("dataType"))
        if binding.kind == "table":
            table = check_table(scope.text(binding, "tableName") or "")
            partition_key = scope.text(binding, "partitionKey")
            row_key = scope.text(binding, "rowKey")
            if partition_key is not None and row_key is not None:
                found: Any = await store.read_entity(table, partition_key, row_key)
            else:
                take = binding.get("take")
                found = await store.query_entities(
                    table,
                    partition_key,
                    scope.text(binding, "filter", odata=True),
                    int(take) if take not in (None, "") else None,
                )
            return values.table_parameter(values.table_json(found), annotation)
    except BindingTargetError as err:
        raise BindingError(f"binding '{binding.name}': {err}") from err
    raise BindingError(f"binding '{binding.name}': a {binding.kind} binding has no input")


async def write_output(binding: Binding, value: Any, scope: BindingScope) -> None:
    """Deliver what a function set on an output binding (called only after it succeeded)."""
    store = scope.store(binding)
    try:
        if binding.kind == "blob":
            container, name = _blob_target(binding, scope)
            content_type = "text/plain; charset=utf-8" if isinstance(value, str) else None
            await store.write_blob(container, name, values.blob_bytes(value), content_type)
            return
        if binding.kind == "table":
            table = check_table(scope.text(binding, "tableName") or "")
            entities = values.table_entities(
                value, scope.text(binding, "partitionKey"), scope.text(binding, "rowKey")
            )
            await store.write_entities(table, entities)
            return
        if binding.kind == "queue":
            queue = check_queue(scope.text(binding, "queueName") or "")
            contents = [
                values.encode_queue_message(body, scope.queue_encoding)
                for body in values.queue_bodies(value)
            ]
            await store.send_messages(queue, contents)
            return
    except (BindingTargetError, values.BindingValueError) as err:
        raise BindingError(f"binding '{binding.name}': {err}") from err
    raise BindingError(f"binding '{binding.name}': a {binding.kind} binding has no output")


def _blob_target(binding: Binding, scope: BindingScope) -> tuple[str, str]:
    path = scope.text(binding, "path") or ""
    try:
        container, name = split_blob_path(path)
    except BindingExpressionError as err:
        raise BindingError(f"binding '{binding.name}': {err}") from err
    return check_container(container), name
