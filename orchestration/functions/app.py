"""`DFApp` and `Blueprint`: azure-functions-durable's decorators on plain Functions triggers.

`orchestration_trigger`, `activity_trigger` and `entity_trigger` register user functions with
the engine (they are not Functions of their own: the engine's queue triggers run them) and
return a `DurableFunctionBuilder`, as DF's do. `durable_client_input` injects a
`DurableOrchestrationClient` into the decorated function and hides that parameter from the
Functions indexer, so no extension binding is needed.

The engine's own functions (the orchestrator worker, the activity worker, the starts queue,
the timer sweeper and the HTTP starter and management API) exist once per app: a `DFApp`
registers them when it is created; a plain `func.FunctionApp` gets them when the first
durable `Blueprint` is registered on it (`app.register_functions(bp)`, DF's blueprint shape).
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import azure.functions as func
from azure.functions.decorators.function_app import (
    DecoratorApi,
    Function,
    FunctionBuilder,
    SettingsApi,
    TriggerApi,
)

from orchestration.core.function_refs import INPUT_TYPE
from orchestration.functions import http_api, triggers
from orchestration.functions.activity_bindings import ActivityBindings, declared_bindings
from orchestration.functions.builders import (
    CLIENT_SPEC,
    KINDS,
    CheckedBuilder,
    ClientSpec,
    DurableFunctionBuilder,
    mark,
)
from orchestration.functions.engine import Engine
from orchestration.functions.registry import Registry
from orchestration.functions.settings import EngineSettings

_ENGINE_PREFIX = "durable_"
_STARTER = "durable_http_start"
_WIRING = "_durable_wiring"  # on a plain FunctionApp: its `_Wiring`
# The one place azure-functions reads a blueprint's builders to register them.
_REGISTER_CODE = func.FunctionRegister.register_functions.__code__


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
    while frame is not None and frame.f_globals.get("__name__", "").startswith(
        (__name__, "azure.functions")
    ):
        frame = frame.f_back  # type: ignore[assignment]
    file = frame.f_globals.get("__file__") if frame is not None else None
    return Path(file).resolve().parent if file else Path.cwd()


def _drop_spare_starter(app: func.FunctionRegister) -> None:
    """The default HTTP starter steps aside for an app's own `orchestrators/...` route.

    Durable Functions apps usually define `orchestrators/{functionName}` themselves; such an
    app moves over unchanged, so its route wins over the engine's.
    """
    builders = app._function_builders
    if any(
        _route(b).lower().startswith("orchestrators/") for b in builders if _name(b) != _STARTER
    ):
        app._function_builders = [b for b in builders if _name(b) != _STARTER]


def _check_activity_bindings(engine: Engine) -> None:
    """Activities' bindings must name app settings that exist: refused when the app is
    indexed (start-up), as the Functions host refuses a Function's, not when one runs."""
    bindings = ActivityBindings(engine.settings.queue_message_encoding)
    for activity in engine.registry.activities.values():
        bindings.check(activity.name, activity.bindings)


def _register_engine_functions(app: func.FunctionApp, engine: Engine) -> None:
    """Add the engine's functions to `app` (or any app with FunctionApp's decorators)."""
    names = engine.settings.names
    connection = engine.settings.connection_name

    @app.function_name(f"{_ENGINE_PREFIX}orchestrator_worker")
    @app.queue_trigger(arg_name="msg", queue_name=names.control_queue, connection=connection)
    async def orchestrator_worker(msg: func.QueueMessage) -> None:
        await triggers.on_control_message(engine, msg)

    @app.function_name(f"{_ENGINE_PREFIX}activity_worker")
    @app.queue_trigger(arg_name="msg", queue_name=names.work_item_queue, connection=connection)
    async def activity_worker(msg: func.QueueMessage) -> None:
        await triggers.on_work_item(engine, msg)

    @app.function_name(f"{_ENGINE_PREFIX}starts_queue")
    @app.queue_trigger(arg_name="msg", queue_name=names.starts_queue, connection=connection)
    async def starts_queue(msg: func.QueueMessage) -> None:
        await triggers.on_start_message(engine, msg)

    @app.function_name(f"{_ENGINE_PREFIX}timer_sweeper")
    @app.timer_trigger(arg_name="timer", schedule=engine.settings.timer_sweep_schedule)
    async def timer_sweeper(timer: func.TimerRequest) -> None:
        await triggers.on_timer_sweep(engine)

    http_api.register(cast("DFApp", app), engine)


class _DurableDecorators(DecoratorApi):
    """The durable decorators, shared by DFApp and Blueprint."""

    _registry: Registry
    _engine_ref: list[Engine]

    def _configure_function_builder(self, wrap: Callable[..., Any]) -> Callable[..., Any]:
        """As azure-functions does, with two differences: a decorator stacked on a durable
        trigger applies to its builder (which is in no list), and new builders check their
        durable client when the app is indexed (`CheckedBuilder`)."""

        def decorator(function: Any) -> Any:
            if isinstance(function, DurableFunctionBuilder):
                return function.restack(wrap)
            if isinstance(function, FunctionBuilder):
                builder = self._validate_type(function)  # type: ignore[no-untyped-call]
            else:
                builder = CheckedBuilder(function, self._app_script_file)  # type: ignore[no-untyped-call]
            self._function_builders.append(builder)
            return wrap(builder)

        return decorator

    def _take(self, function: Any, kind: str) -> tuple[Any, str | None, Function | None]:
        """The user's function under a durable trigger, the name a decorator below it gave
        (`@app.function_name`), and the Function holding the bindings decorators below it
        declared (an activity's storage bindings)."""
        if isinstance(function, DurableFunctionBuilder):
            raise TypeError(
                f"{function.registered_name!r} is already an {KINDS[function.kind]} function; "
                f"a function takes one durable trigger."
            )
        if not isinstance(function, FunctionBuilder):
            return function, None, None
        self._function_builders[:] = [b for b in self._function_builders if b is not function]
        inner = function._function
        if inner.get_trigger() is not None or (inner.get_bindings() and kind != "activity"):
            raise TypeError(
                f"{inner.get_function_name()!r} is an {KINDS[kind]} function: the engine runs "
                f"it, so it takes no trigger or binding of its own. Put @app.route (or "
                f"another trigger) on a separate function that starts it with "
                f"@app.durable_client_input."
            )
        named = inner.get_setting("function_name")
        user_function = inner.get_user_function()
        return user_function, (inner.get_function_name() if named else None), inner

    def _builder(self, target: Any, kind: str, name: str) -> Any:
        if not hasattr(target, "__name__"):  # an Entity object, say: nothing to build
            return target
        return DurableFunctionBuilder(target, kind, name, self._registry)

    def orchestration_trigger(
        self,
        context_name: str,
        orchestration: str | None = None,
        input_type: type | None = None,
    ) -> Callable[[Any], Any]:
        """Register an orchestrator function (named after the function unless given).

        `input_type`: the class `context.get_input()` rebuilds the input as, when the call
        names none (`get_input(expected_type=...)` wins), as in azure-functions-durable."""

        def decorator(function: Any) -> Any:
            target, named, _ = self._take(function, "orchestration")
            name = orchestration or named or target.__name__
            self._registry.add_orchestrator(name, target)
            mark(target, orchestrator_function=target)
            if input_type is not None:
                mark(target, **{INPUT_TYPE: input_type})
            return self._builder(target, "orchestration", name)

        return decorator

    def activity_trigger(
        self, input_name: str, activity: str | None = None
    ) -> Callable[[Any], Any]:
        """Register an activity function; its `input_name` parameter receives the input."""

        def decorator(function: Any) -> Any:
            target, named, declared = self._take(function, "activity")
            name = activity or named or target.__name__
            _check_parameter(target, input_name, name)
            bindings = declared_bindings(declared, name, target, input_name) if declared else ()
            self._registry.add_activity(name, target, input_name, bindings)
            return self._builder(target, "activity", name)

        return decorator

    def entity_trigger(
        self, context_name: str, entity_name: str | None = None
    ) -> Callable[[Any], Any]:
        """Register an entity function (named after the function unless given): it gets a
        `DurableEntityContext` for each operation, as in azure-functions-durable."""

        def decorator(function: Any) -> Any:
            target, named, _ = self._take(function, "entity")
            name = (
                entity_name or named or getattr(target, "__name__", None) or type(target).__name__
            )
            self._registry.add_entity(name, target)
            mark(target, entity_function=getattr(target, "fn", target))
            return self._builder(target, "entity", name)

        return decorator

    def durable_openai_agent_orchestrator(
        self, _func: Any = None, *, model_provider: Any = None, model_retry_options: Any = None
    ) -> Any:
        """DF's OpenAI Agents preview integration, which this engine does not provide."""
        raise NotImplementedError(
            "durable_openai_agent_orchestrator (Durable Functions' OpenAI Agents preview) is not "
            "provided here. Write the agent loop as an orchestrator "
            "(@app.orchestration_trigger) that calls the model in an activity "
            "(context.call_activity) or with context.call_http."
        )

    def durable_client_input(
        self,
        client_name: str,
        task_hub: str | None = None,
        connection_name: str | None = None,
    ) -> Callable[[Any], Any]:
        """Pass a `DurableOrchestrationClient` as parameter `client_name`.

        `task_hub` and `connection_name`, as in DF, must name this app's hub and storage
        connection (checked when the app is indexed): a client of another hub is refused."""
        spec = ClientSpec(self._engine_ref, task_hub, connection_name)

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
                engine = spec.engine()
                kwargs[client_name] = await engine.client(http_api.base_url(engine, request))
                result = function(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                return result

            with_client.__signature__ = signature.replace(parameters=remaining)  # type: ignore[attr-defined]
            mark(with_client, client_function=function, **{CLIENT_SPEC: spec})
            return with_client

        def decorator(target: Any) -> Any:
            if isinstance(target, FunctionBuilder):
                target._function._func = wrap(target._function._func)
                return target
            return wrap(target)

        return decorator


def _check_parameter(function: Any, input_name: str, name: str) -> None:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    if input_name not in parameters and not takes_any:
        raise TypeError(
            f"activity {name!r}: activity_trigger(input_name={input_name!r}) names no "
            f"parameter of the function (it has {list(parameters)})."
        )


class Blueprint(_DurableDecorators, func.Blueprint):
    """A group of functions, orchestrators and activities, registered with `register_functions`
    on a `DFApp` or on a plain `func.FunctionApp` (which then gets the engine's functions)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._registry = Registry()
        self._engine_ref = []

    @property  # type: ignore[override]
    def _function_builders(self) -> list[FunctionBuilder]:
        # azure-functions' register_functions reads this to take the blueprint's functions:
        # the moment a plain FunctionApp learns of a durable blueprint, so it gets the
        # engine then (a DFApp has its own and merges in its register_functions).
        caller = sys._getframe(1)
        if caller.f_code is _REGISTER_CODE:
            app = caller.f_locals.get("self")
            if isinstance(app, func.FunctionRegister) and not isinstance(app, DFApp):
                _join(_plain_wiring(app), self)
        return self._builders

    @_function_builders.setter
    def _function_builders(self, builders: list[FunctionBuilder]) -> None:
        self._builders = builders


@dataclass
class _Wiring:
    """The engine of a plain FunctionApp and the registry it runs."""

    registry: Registry
    engine: Engine


def _join(wiring: _Wiring, blueprint: _DurableDecorators) -> None:
    wiring.registry.merge(blueprint._registry)
    blueprint._engine_ref[:] = [wiring.engine]


def registry_of(app: Any) -> Registry | None:
    """The registry the engine of `app` runs (a DFApp's, or a plain app's with blueprints)."""
    if isinstance(app, DFApp):
        return app._registry
    wiring = vars(app).get(_WIRING) if hasattr(app, "__dict__") else None
    return wiring.registry if isinstance(wiring, _Wiring) else None


def _plain_wiring(app: func.FunctionRegister) -> _Wiring:
    """The engine of `app`, created with its functions the first time."""
    wiring = vars(app).get(_WIRING)
    if isinstance(wiring, _Wiring):
        return wiring
    if not (isinstance(app, TriggerApi) and isinstance(app, SettingsApi)):
        raise TypeError(
            f"a durable Blueprint cannot be registered on a {type(app).__name__}: it needs the "
            f"trigger decorators of `azure.functions.FunctionApp`; use `orchestration.DFApp()`."
        )
    registry = Registry()
    engine = Engine(registry, EngineSettings.from_host_json(_caller_dir()))
    wiring = _Wiring(registry, engine)
    vars(app)[_WIRING] = wiring
    _register_engine_functions(cast("func.FunctionApp", app), engine)
    index = app.get_functions

    def get_functions() -> Any:
        _drop_spare_starter(app)
        _check_activity_bindings(engine)
        return index()

    # The Python worker (and our host) index through these two names.
    setattr(app, "get_functions", get_functions)  # noqa: B010 - an instance's own method
    if not hasattr(app, "aclose"):
        setattr(app, "aclose", engine.aclose)  # noqa: B010 - the host awaits it on stop
    return wiring


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
        _register_engine_functions(self, self.engine)

    def register_functions(self, function_container: Any) -> None:
        super().register_functions(function_container)
        if isinstance(function_container, _DurableDecorators):
            _join(_Wiring(self._registry, self.engine), function_container)

    register_blueprint = register_functions

    async def aclose(self) -> None:
        """Release the engine's connections; the local host calls this when it stops."""
        await self.engine.aclose()

    def get_functions(self) -> Any:
        """Index the app; the default HTTP starter steps aside for an app's own starter."""
        _drop_spare_starter(self)
        _check_activity_bindings(self.engine)
        return super().get_functions()
