"""A local Azure Functions host for Python v2 apps (HTTP, queue, timer and blob triggers; queue,
blob and table bindings).

Run it with `python -m orchestration host`, or programmatically:

    config = HostConfig(app_dir=Path("."), port=7071)
    run_host(config)                      # blocking, with signals, Azurite, workers
    host = FunctionHost(config)           # or in a running event loop
    await host.start(); ...; await host.stop()

Extensions add triggers and bindings through `BindingRegistry.add_trigger/add_binding`.
"""

from __future__ import annotations

from orchestration.host.app_loader import BindingSpec, FunctionSpec
from orchestration.host.azurite import Azurite
from orchestration.host.bindings import (
    BindingConfigError,
    BindingHandler,
    BindingRegistry,
    HostContext,
    Invocation,
    Listener,
    TriggerHandler,
    UnsupportedBindingError,
)
from orchestration.host.extensions import build_registry, builtin_registry
from orchestration.host.invoker import InvocationResult, Invoker
from orchestration.host.runner import FunctionHost, HostConfig, HostStartupError
from orchestration.host.supervisor import run_host

__all__ = [
    "Azurite",
    "BindingConfigError",
    "BindingHandler",
    "BindingRegistry",
    "BindingSpec",
    "FunctionHost",
    "FunctionSpec",
    "HostConfig",
    "HostContext",
    "HostStartupError",
    "Invocation",
    "InvocationResult",
    "Invoker",
    "Listener",
    "TriggerHandler",
    "UnsupportedBindingError",
    "build_registry",
    "builtin_registry",
    "run_host",
]
