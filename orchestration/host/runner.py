"""Compose the host: settings, storage (Azurite when needed), app index, HTTP, listeners."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import os
import re
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from orchestration.host import telemetry
from orchestration.host.app_loader import (
    AppLoadError,
    FunctionSpec,
    find_app,
    import_app_module,
    index_app,
)
from orchestration.host.azurite import (
    Azurite,
    AzuriteError,
    AzuriteMissing,
    find_or_install,
    is_listening,
)
from orchestration.host.bindings import (
    BindingConfigError,
    BindingRegistry,
    HostContext,
    Listener,
    UnsupportedBindingError,
)
from orchestration.host.extensions import ExtensionError, build_registry
from orchestration.host.http_guard import HttpLimits
from orchestration.host.http_server import HttpServer, auth_level_of, route_of
from orchestration.host.invoker import INVOCATION_LOGGER, Invoker
from orchestration.host.keys import (
    FUNCTION_KEY_SETTING,
    KEYS_FILE,
    MASTER_KEY_SETTING,
    HostKeys,
    load_keys,
)
from orchestration.host.logs import add_secrets, secrets_of_settings
from orchestration.host.routes import Router
from orchestration.host.settings import HostConfigError, HostJson, load_local_settings
from orchestration.host.storage import StorageAccounts, StorageConfigError, loopback_ports

log = logging.getLogger("orchestration.host")

STORAGE_SETTING = "AzureWebJobsStorage"
HOST_ID_SETTING = "AzureFunctionsWebHost__hostid"
READY_LINE = "Host started"
# An httpTrigger field naming the page a person opens (the banner prints its URL).
LANDING_FIELD = "landingPage"
GC_YOUNG_THRESHOLD = 50_000


class HostStartupError(RuntimeError):
    """The host cannot start; the message says why in terms a user can act on."""


@dataclass(frozen=True)
class HostConfig:
    """How to run the host (the CLI's options)."""

    app_dir: Path
    """The directory holding function_app.py, host.json and local.settings.json."""
    port: int = 7071
    bind: str = "127.0.0.1"
    workers: int = 1
    """Worker processes for run_host; 0 means FUNCTIONS_WORKER_PROCESS_COUNT (else 1)."""
    grace: float = 30.0
    """Seconds in-flight invocations get on shutdown."""
    start_azurite: bool = True
    install_azurite: bool = False  # --install-azurite: npm install it when missing
    extensions: tuple[str, ...] = ()
    """`module:function` binding extensions to register (besides entry points and settings)."""
    reuse_port: bool = False
    print_banner: bool = True


def host_id_for(app_dir: Path, settings: dict[str, str]) -> str:
    """The host id (names the timer locks): from settings, else derived from the app path."""
    configured = settings.get(HOST_ID_SETTING)
    if configured:
        return configured.lower()[:32]
    digest = hashlib.sha1(str(app_dir.resolve()).encode()).hexdigest()
    return f"local-{digest[:26]}"


def ensure_azurite(app_dir: Path, install: bool = False) -> Azurite | None:
    """Start Azurite under DIR/.azurite when AzureWebJobsStorage points at loopback and
    nothing listens there; return it (the caller stops it) or None when not needed. With
    `install`, a missing Azurite is first installed into DIR/node_modules. A connection
    string that names a real account (not loopback) is never touched."""
    conn = os.environ.get(STORAGE_SETTING)
    if not conn:
        return None
    try:
        endpoints = loopback_ports(conn)
    except StorageConfigError as err:
        raise HostStartupError(f"{STORAGE_SETTING}: {err}") from err
    if endpoints is None:
        return None
    host, blob, queue, table = endpoints
    listening = [is_listening(host, port) for port in (blob, queue, table)]
    if all(listening):
        return None
    if any(listening):
        raise HostStartupError(
            f"{STORAGE_SETTING} points at {host} ports {blob}/{queue}/{table}; only some listen, "
            "so another program holds them. Stop it or point the setting elsewhere."
        )
    access_log = os.environ.get("AZURITE_ACCESS_LOG") == "1"
    try:
        executable = find_or_install(app_dir, install, log.info)
    except AzuriteMissing as missing:
        raise HostStartupError(
            f"{STORAGE_SETTING} points at {host} ports {blob}/{queue}/{table}, where "
            f"nothing listens. {missing}"
        ) from missing
    except AzuriteError as err:
        raise HostStartupError(str(err)) from err
    azurite = Azurite(
        app_dir / ".azurite", host, blob, queue, table, executable, access_log=access_log
    )
    try:
        azurite.start()
    except AzuriteError as err:
        raise HostStartupError(str(err)) from err
    log.info("Started Azurite (pid %s) on %s ports %d/%d/%d, data in %s",
             azurite.pid, host, blob, queue, table, azurite.location)  # fmt: skip
    return azurite


@dataclass
class FunctionHost:
    """One host process: index the app, then serve HTTP and run the listeners.

    Settings must already be in os.environ (see `prepare_environment`).
    """

    config: HostConfig
    registry: BindingRegistry | None = None
    functions: list[FunctionSpec] = field(default_factory=list, init=False)
    app_object: object | None = field(default=None, init=False)
    keys: HostKeys | None = field(default=None, init=False)
    context: HostContext | None = field(default=None, init=False)
    _listeners: list[Listener] = field(default_factory=list, init=False)
    _server: HttpServer | None = field(default=None, init=False)
    _executor: ThreadPoolExecutor | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        """Where the HTTP server listens."""
        return f"http://{self.config.bind}:{self.config.port}"

    async def start(self) -> None:
        """Index and validate the app, then start serving. Raises HostStartupError."""
        app_dir = self.config.app_dir.resolve()
        settings = dict(os.environ)
        try:
            # Before the app is imported: its module-level tracers then find the providers.
            exporting = telemetry.configure(settings)
        except telemetry.TelemetrySetupError as err:
            raise HostStartupError(str(err)) from err
        if exporting:
            log.info("OpenTelemetry %s", "; ".join(exporting))
        if str(app_dir) not in sys.path:
            sys.path.insert(0, str(app_dir))  # as the worker does; extensions may live there too
        try:
            host_json = HostJson.load(app_dir)
            registry = self.registry or build_registry(self.config.extensions, settings)
            self.app_object = find_app(import_app_module(app_dir))
            self.functions = index_app(self.app_object)
        except (HostConfigError, AppLoadError, ExtensionError) as err:
            raise HostStartupError(str(err)) from err
        # host.json logging.logLevel, as the Functions host applies it: "Function" for the
        # per-invocation lines, "default" for the app's own logs; the host's lifecycle lines
        # (start, stop, listeners) always show.
        logging.getLogger(INVOCATION_LOGGER).setLevel(host_json.log_level("Function"))
        logging.getLogger().setLevel(host_json.log_level("default"))
        logging.getLogger("orchestration.host").setLevel(logging.INFO)
        threads = int(
            settings.get("PYTHON_THREADPOOL_THREAD_COUNT") or min(32, (os.cpu_count() or 1) + 4)
        )
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="function")
        invoker = Invoker(registry, self._executor)
        self.context = context = HostContext(
            app_dir=app_dir,
            host_id=host_id_for(app_dir, settings),
            host_json=host_json,
            settings=settings,
            storage=StorageAccounts(),
            invoker=invoker,
            router=Router(host_json.route_prefix),
        )
        invoker.host = context
        try:
            for function in self.functions:
                registry.validate(function, context)
        except (UnsupportedBindingError, BindingConfigError) as err:
            await self._release()
            raise HostStartupError(str(err)) from err
        listeners: list[tuple[str, Listener]] = []
        for function in self.functions:
            listener = registry.trigger(function.trigger.type).create_listener(function, context)
            if listener is not None:
                listeners.append((function.name, listener))
        self.keys = load_keys(app_dir, settings)
        add_secrets([self.keys.master, *self.keys.host_function_keys.values()])
        add_secrets(v for keys in self.keys.function_keys.values() for v in keys.values())
        add_secrets(secrets_of_settings(settings))
        try:
            limits = HttpLimits.from_settings(settings)
        except ValueError as err:
            await self._release()
            raise HostStartupError(str(err)) from err
        self._server = HttpServer(
            context,
            self.keys,
            self.config.port,
            self.config.bind,
            self.config.reuse_port,
            self.config.grace,
            limits,
        )
        try:
            await self._server.start()
        except OSError as err:
            await self._release()
            raise HostStartupError(
                f"cannot listen on {self.config.bind}:{self.config.port}: {err}"
            ) from err
        for name, listener in listeners:
            try:
                await listener.start()
            except Exception as err:
                await self.stop()
                raise HostStartupError(
                    f"function '{name}': starting its {type(listener).__name__} failed: "
                    f"{type(err).__name__}: {err}"
                ) from err
            self._listeners.append(listener)
        if self.config.print_banner:
            print(self.banner(), flush=True)
        # What start-up allocated (modules, the app, clients) lives as long as the host: keep
        # it out of the collector's reach, or each full collection walks it all again (tens
        # of milliseconds of pause for every request and timer that lands in one). And
        # collect the young generation every 50,000 allocations, not 700, which cut durable
        # timers' lateness tail (bench/timer_bench.py measures it).
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)
        log.info("%s (%d functions, pid %d)", READY_LINE, len(self.functions), os.getpid())

    async def stop(self) -> None:
        """Stop polling and serving; in-flight invocations get `grace` seconds to finish."""
        if self.context is not None:
            self.context.stopping.set()
        grace = self.config.grace
        await asyncio.gather(
            *(listener.stop(grace) for listener in self._listeners),
            *([self._server.stop()] if self._server else []),
        )
        if self.context is not None and not await self.context.invoker.wait_idle(grace):
            log.warning("Invocations still running after %.0fs; leaving them", grace)
        await self._release()
        log.info("Host stopped (pid %d)", os.getpid())

    async def _release(self) -> None:
        # Not part of the Functions model: an app object may offer `aclose()` to release what
        # it holds (connections) when this host stops; Azure simply ends the process.
        close = getattr(self.app_object, "aclose", None)
        if callable(close):
            try:
                await close()
            except Exception:
                log.exception("the app's aclose() failed")
        try:
            if self.context is not None:
                await self.context.storage.close()
                await self.context.binding_stores.close()
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
        finally:
            # Flushing may wait on an exporter's endpoint: not on the event loop.
            await asyncio.to_thread(telemetry.shutdown)

    async def run_until_signal(self) -> None:
        """Start, serve until SIGINT/SIGTERM, stop."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await self.start()
        try:
            await stop.wait()
            log.info("Shutting down")
        finally:
            await self.stop()

    def banner(self) -> str:
        """The function list with URLs, as Core Tools prints it, and where the keys are."""
        lines = ["", "Functions:", ""]
        for function in self.functions:
            if function.trigger.type.lower() == "httptrigger":
                methods = function.trigger.get("methods")
                shown = ",".join(m.upper() for m in methods) if methods else "ALL"
                prefix = self.context.router.prefix if self.context else "api"
                path = "/".join(p for p in (prefix, route_of(function)) if p)
                lines.append(
                    f"\t{function.name}: [{shown}] {self.base_url}/{path} "
                    f"(authLevel {auth_level_of(function)})"
                )
            else:
                lines.append(f"\t{function.name}: {function.trigger.type}")
            lines.append("")
        # A function whose trigger names a landing page (the engine's dashboard) gets a line
        # of its own: the URL a person opens, without the route's catch-all parameter.
        for function in self.functions:
            title = function.trigger.get(LANDING_FIELD)
            if function.trigger.type.lower() == "httptrigger" and title:
                prefix = self.context.router.prefix if self.context else "api"
                route = re.sub(r"\{\*[^}]*\}$", "", route_of(function))
                path = "/".join(p for p in (prefix, route.rstrip("/")) if p)
                lines.append(f"{title}: {self.base_url}/{path}/")
                lines.append("")
        # Keys are never printed: output ends up in logs. Say where they are instead.
        if os.environ.get(MASTER_KEY_SETTING) and os.environ.get(FUNCTION_KEY_SETTING):
            lines.append(f"Keys: the {MASTER_KEY_SETTING} and {FUNCTION_KEY_SETTING} settings")
        else:
            keys_file = self.config.app_dir.resolve() / KEYS_FILE
            lines.append(
                f"Keys: {keys_file} (masterKey for admin, functionKeys.default for functions), "
                f"e.g. jq -r .functionKeys.default {keys_file}"
            )
        return "\n".join(lines)


def prepare_environment(app_dir: Path) -> None:
    """Load DIR/local.settings.json Values into os.environ (variables already set win)."""
    try:
        load_local_settings(app_dir, os.environ)
    except HostConfigError as err:
        raise HostStartupError(str(err)) from err
