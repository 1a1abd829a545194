"""The binding registry: binding type -> handler, for triggers and for input/output bindings.

The host's own triggers (httpTrigger, queueTrigger, timerTrigger, blobTrigger) and bindings
(http, queue, blob, table) are registered here like any extension's, so an extension (for
example a durable engine's `orchestrationTrigger` or `durableClient`) plugs in without
changes to the host's core.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import azure.functions as func
from azure.functions import _abc

from orchestration.bindings.expressions import SystemValues
from orchestration.bindings.store import BindingStores, connection_setting
from orchestration.host.app_loader import BindingSpec, FunctionSpec
from orchestration.host.settings import HostConfigError, HostJson, resolve
from orchestration.host.storage import StorageAccount, StorageAccounts

if TYPE_CHECKING:
    from orchestration.host.invoker import Invoker
    from orchestration.host.routes import Router


class UnsupportedBindingError(RuntimeError):
    """A function uses a binding type that no registered handler supports."""


class BindingConfigError(RuntimeError):
    """A binding is supported but configured wrongly (bad schedule, missing setting...)."""


class Listener(Protocol):
    """What a trigger handler starts: it feeds invocations to the invoker until stopped."""

    async def start(self) -> None:
        """Begin listening; return once started."""

    async def stop(self, grace: float) -> None:
        """Stop taking new work and let in-flight invocations finish (at most `grace` s)."""


class Notifier:
    """In-process wake-up: an output binding tells this process's listeners of that queue (or
    blob container) to poll.

    The Functions host does the same (its shared queue watcher, its blob-written watcher), so
    a message or blob written by one function is picked up at once instead of after the
    listener's backoff.
    """

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = {}

    def subscribe(self, key: str) -> asyncio.Event:
        """An event set whenever something in this process writes to `key`."""
        event = asyncio.Event()
        self._events.setdefault(key, set()).add(event)
        return event

    def notify(self, key: str) -> None:
        """Wake the listeners of `key`."""
        for event in self._events.get(key, ()):
            event.set()


@dataclass
class HostContext:
    """What the host offers to trigger and binding handlers."""

    app_dir: Path
    host_id: str
    host_json: HostJson
    settings: Mapping[str, str]
    storage: StorageAccounts
    invoker: Invoker
    router: Router
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    queue_notifier: Notifier = field(default_factory=Notifier)
    blob_notifier: Notifier = field(default_factory=Notifier)
    """Keyed by container name."""
    binding_stores: BindingStores = field(default_factory=BindingStores)
    """The SDK clients of blob and table bindings (and blob triggers), per connection."""

    def resolve(self, value: str) -> str:
        """Resolve `%Setting%` references in a binding property."""
        try:
            return resolve(value, self.settings)
        except HostConfigError as err:
            raise BindingConfigError(str(err)) from err

    def connection_string(self, connection: str | None) -> str:
        """The storage connection string a binding's `connection` setting names."""
        name, value = connection_setting(self.settings, connection)
        if value:
            return value
        raise BindingConfigError(
            f"Storage account connection string '{name}' does not exist. "
            "Make sure that it is a defined App Setting."
        )

    def storage_for(self, binding: BindingSpec | None = None) -> StorageAccount:
        """The storage account of a binding's `connection` (AzureWebJobsStorage by default)."""
        connection = binding.get("connection") if binding else None
        return self.storage.get(self.connection_string(connection))


@dataclass
class Invocation:
    """One run of a function, as binding handlers see it.

    `trigger_metadata` is the binding data the trigger provides (what `{name}` expressions
    resolve against); `system` the `{rand-guid}` and `{DateTime}` of this run, the same in
    all of its bindings, as the WebJobs SDK keeps them.
    """

    invocation_id: str
    function: FunctionSpec
    trigger_value: Any
    trigger_metadata: dict[str, Any] = field(default_factory=dict)
    system: SystemValues = field(default_factory=SystemValues.now)


class TriggerHandler:
    """Base for trigger handlers: validate a function at start, then create its listener."""

    def validate(self, function: FunctionSpec, host: HostContext) -> None:
        """Raise BindingConfigError when the trigger is misconfigured (called at start)."""

    def create_listener(self, function: FunctionSpec, host: HostContext) -> Listener | None:
        """The listener that will invoke `function`; None when another part serves it."""
        raise NotImplementedError

    def binding_data_names(self, function: FunctionSpec, host: HostContext) -> set[str] | None:
        """The names the trigger's binding data always holds, so that bindings naming others
        are refused at start; None when it depends on the payload (a JSON body)."""
        return None


class BindingHandler:
    """Base for input/output binding handlers."""

    def validate(self, function: FunctionSpec, binding: BindingSpec, host: HostContext) -> None:
        """Raise BindingConfigError when the binding is misconfigured (called at start)."""

    async def bind_input(
        self, binding: BindingSpec, invocation: Invocation, host: HostContext
    ) -> Any:
        """The value passed to the function's parameter for an input binding."""
        raise UnsupportedBindingError(f"binding type {binding.type!r} has no input direction")

    async def write_output(
        self, binding: BindingSpec, value: Any, invocation: Invocation, host: HostContext
    ) -> None:
        """Deliver what the function set on an output binding, after it succeeded."""
        raise UnsupportedBindingError(f"binding type {binding.type!r} has no output direction")


class BindingRegistry:
    """Maps binding type names (as in function.json) to handlers."""

    def __init__(self) -> None:
        self._triggers: dict[str, TriggerHandler] = {}
        self._bindings: dict[str, BindingHandler] = {}

    def add_trigger(self, binding_type: str, handler: TriggerHandler) -> None:
        """Register (or replace) the handler of a trigger type, e.g. "queueTrigger"."""
        self._triggers[binding_type.lower()] = handler

    def add_binding(self, binding_type: str, handler: BindingHandler) -> None:
        """Register (or replace) the handler of an input/output binding type, e.g. "queue"."""
        self._bindings[binding_type.lower()] = handler

    def trigger(self, binding_type: str) -> TriggerHandler:
        """The handler of a trigger type; UnsupportedBindingError when unknown."""
        try:
            return self._triggers[binding_type.lower()]
        except KeyError:
            raise UnsupportedBindingError(
                f"trigger type {binding_type!r} is not supported"
            ) from None

    def binding(self, binding_type: str) -> BindingHandler:
        """The handler of a binding type; UnsupportedBindingError when unknown."""
        try:
            return self._bindings[binding_type.lower()]
        except KeyError:
            raise UnsupportedBindingError(
                f"binding type {binding_type!r} is not supported"
            ) from None

    @property
    def trigger_types(self) -> list[str]:
        """Registered trigger types."""
        return sorted(self._triggers)

    @property
    def binding_types(self) -> list[str]:
        """Registered input/output binding types."""
        return sorted(self._bindings)

    def validate(self, function: FunctionSpec, host: HostContext) -> None:
        """Check every binding of a function; errors name the function and the binding type."""
        try:
            trigger = self.trigger(function.trigger.type)
        except UnsupportedBindingError:
            raise UnsupportedBindingError(
                f"function '{function.name}': trigger '{function.trigger.name}' of type "
                f"'{function.trigger.type}' is not supported by this host "
                f"(supported triggers: {', '.join(self.trigger_types)})"
            ) from None
        try:
            trigger.validate(function, host)
        except (BindingConfigError, HostConfigError) as err:
            raise BindingConfigError(f"function '{function.name}': {err}") from err
        for binding in function.other_bindings:
            try:
                handler = self.binding(binding.type)
            except UnsupportedBindingError:
                raise UnsupportedBindingError(
                    f"function '{function.name}': binding '{binding.name}' of type "
                    f"'{binding.type}' is not supported by this host "
                    f"(supported bindings: {', '.join(self.binding_types)})"
                ) from None
            try:
                handler.validate(function, binding, host)
            except (BindingConfigError, HostConfigError) as err:
                raise BindingConfigError(f"function '{function.name}': {err}") from err


class _TraceContext(_abc.TraceContext):
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class InvocationContext(func.Context):
    """The `context` parameter, as the Python worker provides it."""

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._thread_local = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._thread_local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> _abc.TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> Any:
        return None
