"""The built-in bindings, plus extensions that add binding handlers to the registry.

An extension is a callable `register(registry: BindingRegistry) -> None`, found through the
`orchestration.host_extensions` entry point group, the ORCHESTRATION_HOST_EXTENSIONS
setting (comma-separated `module:function`), or HostConfig.extensions.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import entry_points

from orchestration.host.bindings import BindingRegistry
from orchestration.host.blob_trigger import BlobTriggerHandler
from orchestration.host.http_server import HttpOutputHandler, HttpTriggerHandler
from orchestration.host.queue_listener import QueueOutputHandler, QueueTriggerHandler
from orchestration.host.storage_bindings import BlobBindingHandler, TableBindingHandler
from orchestration.host.timer_scheduler import TimerTriggerHandler

ENTRY_POINT_GROUP = "orchestration.host_extensions"
EXTENSIONS_SETTING = "ORCHESTRATION_HOST_EXTENSIONS"

Extension = Callable[[BindingRegistry], None]


class ExtensionError(RuntimeError):
    """An extension could not be imported or failed to register."""


def builtin_registry() -> BindingRegistry:
    """A registry with the host's own triggers and bindings."""
    registry = BindingRegistry()
    registry.add_trigger("httpTrigger", HttpTriggerHandler())
    registry.add_trigger("queueTrigger", QueueTriggerHandler())
    registry.add_trigger("timerTrigger", TimerTriggerHandler())
    registry.add_trigger("blobTrigger", BlobTriggerHandler())
    registry.add_binding("http", HttpOutputHandler())
    registry.add_binding("queue", QueueOutputHandler())
    registry.add_binding("blob", BlobBindingHandler())
    registry.add_binding("table", TableBindingHandler())
    return registry


def _import(spec: str) -> Extension:
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name.strip())
        extension: Extension = getattr(module, attribute.strip() or "register")
    except (ImportError, AttributeError) as err:
        raise ExtensionError(f"cannot load host extension {spec!r}: {err}") from err
    return extension


def build_registry(
    specs: Iterable[str] = (), settings: Mapping[str, str] | None = None
) -> BindingRegistry:
    """Built-ins, then entry-point extensions, then the setting's and `specs`' extensions."""
    registry = builtin_registry()
    extensions: list[tuple[str, Extension]] = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            extensions.append((point.value, point.load()))
        except Exception as err:
            raise ExtensionError(f"cannot load host extension {point.value!r}: {err}") from err
    configured = (settings or {}).get(EXTENSIONS_SETTING, "")
    for spec in [*(s for s in configured.split(",") if s.strip()), *specs]:
        extensions.append((spec, _import(spec)))
    for name, extension in extensions:
        try:
            extension(registry)
        except Exception as err:
            raise ExtensionError(f"host extension {name!r} failed to register: {err}") from err
    return registry
