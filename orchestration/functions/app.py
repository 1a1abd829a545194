"""`DFApp` and `Blueprint`: azure-functions-durable's decorators on plain Functions triggers.

`orchestration_trigger`, `activity_trigger` and `entity_trigger` register user functions with
the engine (they are not Functions of their own: the engine's queue triggers run them).
`durable_client_input` injects a `DurableOrchestrationClient` into the decorated function and
hides that parameter from the Functions indexer, so no extension binding is needed.
Creating a `DFApp` registers the engine's own functions: the orchestrator worker, the activity
worker, the starts queue, the timer sweeper and the HTTP starter and management API.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions.decorators.function_app import FunctionBuilder

from orchestration.functions import http_api, triggers
from orchestration.functions.engine import Engine
from orchestration.functions.registry import Registry
from orchestration.functions.settings import EngineSettings

_ENGINE_PREFIX = "durable_"
_STARTER = "durable_http_start"


def _name(builder: FunctionBuilder) -> str:
    function = builder._function
    for setting in function._settings:
        name = getattr(setting, "function_name", None) or setting.get_dict_repr().get(
            "function_name"
        )
        if name:
            return str(name)
    return str(function._name)


def _route(builder: FunctionBuilder) -> str:
    trigger = builder._function._trigger
    return str(getattr(trigger, "route", None) or "") if trigger is not None else ""


def _caller_dir() -> Path:
    """The directory of the module creating the app: where its host.json lives."""
    root = os.environ.get("AzureWebJobsScriptRoot")  # noqa: SIM112 - Azure's own name
    if root:
        return Path(root)
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(__name__):
        frame = frame.f_back  # type: ignore[assignment]
    file = frame.f_globals.get("__file__") if frame is not None else None
    return Path(file).resolve().parent if file else Path.cwd()


class _DurableDecorators:
    """The durable decorators, shared by DFApp and Blueprint."""

    _registry: Registry
    _engine_ref: list[Engine]

    def orchestration_trigger(
        self, context_name: str, orchestration: str | None = None
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register an orchestrator function (named after the function unless given)."""

        def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
            target = function._function._func if isinstance(function, FunctionBuilder) else function
            self._registry.add_orchestrator(orchestration or target.__name__, target)
            return function

        return decorator

    def activity_trigger(
        self, input_name: str, activity: str | None = None
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register an activity function; its `input_name` parameter receives the input."""

        def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
            target = function._function._func if isinstance(function, FunctionBuilder) else function
            self._registry.add_activity(activity or target.__name__, target, input_name)
            return function

        return decorator

    def entity_trigger(
        self, context_name: str, entity_name: str | None = None
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register an entity function (named after the function unless given): it gets a
        `DurableEntityContext` for each operation, as in azure-functions-durable."""

        def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
            target = function._function._func if isinstance(function, FunctionBuilder) else function
            name = entity_name or getattr(target, "__name__", None) or type(target).__name__
            self._registry.add_entity(name, target)
            return function

        return decorator

    def durable_client_input(
        self,
        client_name: str,
        task_hub: str | None = None,
        connection_name: str | None = None,
    ) -> Callable[[Any], Any]:
        """Pass a `DurableOrchestrationClient` as parameter `client_name`."""

        def wrap(function: Callable[..., Any]) -> Callable[..., Any]:
            signature = inspect.signature(function)
            if client_name not in signature.parameters:
                raise TypeError(
                    f"{function.__name__} has no parameter {client_name!r} for the durable client"
                )
            remaining = [p for n, p in signature.parameters.items() if n != client_name]

            @functools.wraps(function)
            async def with_client(*args: Any, **kwargs: Any) -> Any:
                request = next(
                    (a for a in [*args, *kwargs.values()] if isinstance(a, func.HttpRequest)),
                    None,
                )
                engine = self._engine_ref[0]
                kwargs[client_name] = await engine.client(http_api.base_url(engine, request))
                result = function(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                return result

            with_client.__signature__ = signature.replace(parameters=remaining)  # type: ignore[attr-defined]
            return with_client

        def decorator(target: Any) -> Any:
            if isinstance(target, FunctionBuilder):
                target._function._func = wrap(target._function._func)
                return target
            return wrap(target)

        return decorator


class Blueprint(_DurableDecorators, func.Blueprint):
    """A group of functions, orchestrators and activities, registered with `register_functions`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._registry = Registry()
        self._engine_ref = []


class DFApp(_DurableDecorators, func.FunctionApp):
    """A Functions app with durable orchestrations, as `azure.durable_functions.DFApp`."""

    def __init__(
        self,
        http_auth_level: func.AuthLevel | str = func.AuthLevel.FUNCTION,
        *,
        app_dir: str | Path | None = None,
        settings: EngineSettings | None = None,
    ) -> None:
        super().__init__(http_auth_level=http_auth_level)
        self._registry = Registry()
        directory = Path(app_dir) if app_dir is not None else _caller_dir()
        self.engine_settings = settings or EngineSettings.from_host_json(directory)
        self.engine = Engine(self._registry, self.engine_settings)
        self._engine_ref = [self.engine]
        self._register_engine_functions()

    def register_functions(self, function_container: Any) -> None:
        super().register_functions(function_container)
        registry = getattr(function_container, "_registry", None)
        if isinstance(registry, Registry):
            self._registry.merge(registry)
            function_container._engine_ref[:] = [self.engine]

    register_blueprint = register_functions

    async def aclose(self) -> None:
        """Release the engine's connections; the local host calls this when it stops."""
        await self.engine.aclose()

    def get_functions(self) -> Any:
        """Index the app; the default HTTP starter steps aside for an app's own starter.

        Durable Functions apps usually define `orchestrators/{functionName}` themselves; such
        an app moves over unchanged, so its route wins over the engine's.
        """
        own_starter = any(
            _route(builder).lower().startswith("orchestrators/")
            for builder in self._function_builders
            if _name(builder) != _STARTER
        )
        if own_starter:
            self._function_builders = [b for b in self._function_builders if _name(b) != _STARTER]
        return super().get_functions()

    def _register_engine_functions(self) -> None:
        engine = self.engine
        names = self.engine_settings.names
        connection = self.engine_settings.connection_name

        @self.function_name(f"{_ENGINE_PREFIX}orchestrator_worker")
        @self.queue_trigger(arg_name="msg", queue_name=names.control_queue, connection=connection)
        async def orchestrator_worker(msg: func.QueueMessage) -> None:
            await triggers.on_control_message(engine, msg)

        @self.function_name(f"{_ENGINE_PREFIX}activity_worker")
        @self.queue_trigger(arg_name="msg", queue_name=names.work_item_queue, connection=connection)
        async def activity_worker(msg: func.QueueMessage) -> None:
            await triggers.on_work_item(engine, msg)

        @self.function_name(f"{_ENGINE_PREFIX}starts_queue")
        @self.queue_trigger(arg_name="msg", queue_name=names.starts_queue, connection=connection)
        async def starts_queue(msg: func.QueueMessage) -> None:
            await triggers.on_start_message(engine, msg)

        @self.function_name(f"{_ENGINE_PREFIX}timer_sweeper")
        @self.timer_trigger(arg_name="timer", schedule=self.engine_settings.timer_sweep_schedule)
        async def timer_sweeper(timer: func.TimerRequest) -> None:
            await triggers.on_timer_sweep(engine)

        http_api.register(self, engine)
