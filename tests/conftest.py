"""Shared fixtures: a session Azurite on free ports and launching the local host as a process.

Reuse from any test module:

    def test_x(azurite: Storage, start_host: HostLauncher) -> None:
        host = start_host(APPS / "http_app", env={"OUT_QUEUE": "q1"})
        requests to host.url("/api/...") ...

Set ORCHESTRATION_TEST_STORAGE to a connection string to use an existing Azurite or
storage account instead of starting one.

A run leaves no process behind, however it ends: SIGTERM and SIGHUP run the teardowns (as
Ctrl-C does), what a teardown missed is stopped at exit (tests/processes.py), and every
process started here dies with its parent, should pytest be SIGKILLed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from orchestration.host.azurite import Azurite, free_port
from orchestration.host.lifetime import dies_with_this_process
from tests import processes

pytest_plugins = ("tests.log_audit",)

ROOT = Path(__file__).resolve().parents[1]
APPS = Path(__file__).resolve().parent / "apps"
TEST_MASTER_KEY = "test-master-key"
TEST_FUNCTION_KEY = "test-function-key"
READY_SINGLE = "Host started"
READY_WORKERS = "worker processes ready"


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM and SIGHUP end the run as Ctrl-C does, teardowns included."""
    stack = contextlib.ExitStack()
    stack.enter_context(processes.stop_on_signals())
    config.add_cleanup(stack.close)


@dataclass(frozen=True)
class Storage:
    """The storage the tests run against: a connection string (and Azurite, when we own it)."""

    connection_string: str
    azurite: Azurite | None = None


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    """One Azurite for the whole session, on free loopback ports with data in a temp dir.

    Started once because it takes ~1.5 s and 120 MB; tests isolate themselves by using
    unique queue names and host ids instead. Stopped (and waited for) at the end.
    """
    configured = os.environ.get("ORCHESTRATION_TEST_STORAGE")
    if configured:
        yield Storage(configured)
        return
    instance = Azurite(tmp_path_factory.mktemp("azurite"))
    processes.track(instance, instance.stop)
    instance.start()
    try:
        yield Storage(instance.connection_string, instance)
    finally:
        instance.stop()
        processes.untrack(instance)


def wait_until(
    predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, message: str = ""
) -> Any:
    """Poll until `predicate()` is truthy and return its value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {message or predicate}")
        time.sleep(interval)


def unique(prefix: str) -> str:
    """A unique, queue-name-safe name (lowercase, digits, hyphens)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class HostProcess:
    """A host running as `python -m orchestration host`, its output in `log_path`."""

    process: subprocess.Popen[bytes]
    port: int
    app_dir: Path
    log_path: Path
    env: Mapping[str, str]
    master_key: str = TEST_MASTER_KEY
    function_key: str = TEST_FUNCTION_KEY
    _log_file: Any = field(default=None, repr=False)

    def url(self, path: str) -> str:
        """Absolute URL of a path on this host, e.g. url('/api/items/1')."""
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self) -> str:
        """Everything the host printed so far."""
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30.0) -> str:
        """Wait until `text` appears in the output; fail early if the host exits."""

        def seen() -> bool:
            if text in self.log():
                return True
            if self.process.poll() is not None:
                pytest.fail(
                    f"host exited ({self.process.returncode}) before {text!r}:\n{self.log()}"
                )
            return False

        wait_until(seen, timeout, message=f"{text!r} in host output")
        return self.log()

    def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit by itself; its exit code."""
        return self.process.wait(timeout)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for exit (SIGKILL after `timeout`); the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        processes.untrack(self)
        return self.process.returncode


class HostLauncher(Protocol):
    """Signature of the `start_host` fixture."""

    def __call__(
        self,
        app_dir: Path,
        env: Mapping[str, str] | None = None,
        *,
        workers: int = 1,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
        wait: bool = True,
        storage: str | None = None,
        keys: bool = True,
    ) -> HostProcess: ...


def launch_host(
    app_dir: Path,
    connection_string: str | None,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    *,
    workers: int = 1,
    port: int | None = None,
    extra_args: tuple[str, ...] = (),
    wait: bool = True,
    keys: bool = True,
) -> HostProcess:
    """Start the host on a free port against `connection_string` and (by default) wait
    until it reports ready. With keys=True the test keys are passed as settings, so
    nothing is written into the app dir."""
    port = port or free_port()
    child_env = dict(os.environ)
    child_env.pop("ORCHESTRATION_TEST_STORAGE", None)
    if connection_string:
        child_env["AzureWebJobsStorage"] = connection_string
    if keys:
        child_env["FUNCTIONS_MASTER_KEY"] = TEST_MASTER_KEY
        child_env["FUNCTIONS_FUNCTION_KEY"] = TEST_FUNCTION_KEY
    child_env["PYTHONUNBUFFERED"] = "1"
    child_env.update(env or {})
    command = [
        sys.executable, "-m", "orchestration", "host",
        "--app-dir", str(app_dir), "--port", str(port), "--workers", str(workers),
        "--grace", "5", *extra_args,
    ]  # fmt: skip
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed by HostProcess.stop
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=child_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        preexec_fn=dies_with_this_process(),
    )
    host = HostProcess(process, port, app_dir, log_path, child_env, _log_file=log_file)
    processes.track(host, lambda: host.stop(timeout=5))
    if wait:
        host.wait_for_log(READY_WORKERS if workers > 1 else READY_SINGLE, timeout=60)
    return host


@pytest.fixture
def start_host(azurite: Storage, tmp_path: Path) -> Iterator[HostLauncher]:
    """Launch hosts against the session Azurite; all are stopped when the test ends."""
    hosts: list[HostProcess] = []

    def start(
        app_dir: Path,
        env: Mapping[str, str] | None = None,
        *,
        workers: int = 1,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
        wait: bool = True,
        storage: str | None = None,
        keys: bool = True,
    ) -> HostProcess:
        log_path = tmp_path / f"host-{len(hosts)}.log"
        connection = azurite.connection_string if storage is None else storage or None
        host = launch_host(
            app_dir,
            connection,
            log_path,
            env,
            workers=workers,
            port=port,
            extra_args=extra_args,
            wait=wait,
            keys=keys,
        )
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        with contextlib.suppress(Exception):
            host.stop()
