"""Start and stop Azurite, the Azure Storage emulator, from the project's node_modules."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from orchestration.azure.connection import (
    DEV_ACCOUNT_KEY,
    DEV_ACCOUNT_NAME,
    dev_connection_string,
)
from orchestration.host.lifetime import dies_with_this_process

DEV_ACCOUNT = DEV_ACCOUNT_NAME
DEV_KEY = DEV_ACCOUNT_KEY
# The release the project tests with (3.36 and later need Node 21+).
AZURITE_VERSION = "3.35.0"


class AzuriteError(RuntimeError):
    """Azurite could not be found, started or stopped."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def is_listening(host: str, port: int, timeout: float = 0.25) -> bool:
    """True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def connection_string(host: str, blob_port: int, queue_port: int, table_port: int) -> str:
    """The Azurite connection string for the well-known development account."""
    return dev_connection_string(host, blob_port, queue_port, table_port)


class AzuriteMissing(AzuriteError):
    """No Azurite is installed where we look; the message says how to get one."""


def how_to_get_azurite(app_dir: Path) -> str:
    """What a user runs to get Azurite, in their own app's folder."""
    return (
        "Azurite, the storage emulator, is not installed here (no node_modules/.bin/azurite "
        f"in {app_dir} or above, none on PATH). Any one of these gets it:\n"
        f"  cd {app_dir} && npm install azurite@{AZURITE_VERSION}\n"
        f"  npm install -g azurite@{AZURITE_VERSION}\n"
        f"  python -m orchestration azurite --install --app-dir {app_dir}"
        "   (installs it into the app's node_modules and runs it)\n"
        "or start the host with --install-azurite. It needs Node.js 20 and npm. Or point "
        "AzureWebJobsStorage at a storage account or an emulator you run yourself."
    )


def install_azurite(app_dir: Path, timeout: float = 300.0) -> Path:
    """`npm install azurite@AZURITE_VERSION` into `app_dir`'s node_modules; its launcher."""
    npm = shutil.which("npm")
    if npm is None:
        raise AzuriteError(
            "npm is not on PATH: install Node.js 20 (it brings npm), then run this again."
        )
    command = [npm, "install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"]
    command += ["--prefix", str(app_dir), f"azurite@{AZURITE_VERSION}"]
    # Its own process group, so that a timeout ends npm's children too (they hold the pipes).
    npm_run = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=dies_with_this_process(signal.SIGTERM),
    )
    try:
        output, _ = npm_run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as timed_out:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(npm_run.pid, signal.SIGKILL)
        npm_run.communicate()
        raise AzuriteError(f"npm install azurite took over {timeout:.0f}s") from timed_out
    if npm_run.returncode != 0:
        tail = (output or "").strip()[-2000:]
        raise AzuriteError(f"npm install azurite@{AZURITE_VERSION} failed:\n{tail}")
    launcher = app_dir / "node_modules" / ".bin" / "azurite"
    if not launcher.exists():
        raise AzuriteError(f"npm install finished, but {launcher} is missing")
    return launcher


def find_or_install(app_dir: Path, install: bool, say: Callable[[str], None]) -> Path:
    """The Azurite launcher for an app: found, or with `install` installed into its folder
    (`say` tells the user first); AzuriteMissing (saying what to run) otherwise."""
    try:
        return find_azurite(app_dir)
    except AzuriteMissing:
        if not install:
            raise
    say(f"Installing azurite@{AZURITE_VERSION} into {app_dir / 'node_modules'} ...")
    return install_azurite(app_dir)


def find_azurite(*search_dirs: Path) -> Path:
    """Locate the azurite launcher in node_modules/.bin of the given dirs, the working
    directory, or their parents; else on PATH."""
    candidates: list[Path] = []
    for start in (*search_dirs, Path.cwd()):
        start = start.resolve()
        candidates.extend(d / "node_modules" / ".bin" / "azurite" for d in (start, *start.parents))
    for candidate in candidates:
        if candidate.exists():
            return candidate
    on_path = shutil.which("azurite")
    if on_path:
        return Path(on_path)
    raise AzuriteMissing(how_to_get_azurite(search_dirs[0] if search_dirs else Path.cwd()))


@dataclass
class Azurite:
    """One Azurite process: blob, queue and table services on loopback ports.

    Ports left at 0 are chosen free at start. Data lives under `location`, so a
    restart on the same location keeps it. Usable as a context manager.
    """

    location: Path
    host: str = "127.0.0.1"
    blob_port: int = 0
    queue_port: int = 0
    table_port: int = 0
    executable: Path | None = None
    # Azurite's per-request access log (to <location>/azurite.log) costs it about a third of
    # its CPU per call; off unless asked for.
    access_log: bool = False
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def connection_string(self) -> str:
        """Connection string for the development account on this instance's ports."""
        return connection_string(self.host, self.blob_port, self.queue_port, self.table_port)

    @property
    def pid(self) -> int | None:
        """The process id while running."""
        return self._process.pid if self._process else None

    def exit_code(self) -> int | None:
        """The process's exit code once it has exited by itself; None while it runs."""
        return self._process.poll() if self._process is not None else None

    def start(self, timeout: float = 30.0) -> Azurite:
        """Start Azurite and wait until its three services accept connections."""
        self.launch()
        return self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process without waiting for it; `wait_ready` waits.

        Call it from the main thread for the process to die with this one (see
        orchestration.host.lifetime); the wait may run on any thread.
        """
        if self._process is not None:
            raise AzuriteError("Azurite already started")
        self.blob_port = self.blob_port or free_port(self.host)
        self.queue_port = self.queue_port or free_port(self.host)
        self.table_port = self.table_port or free_port(self.host)
        executable = self.executable or find_azurite(self.location)
        self.location.mkdir(parents=True, exist_ok=True)
        command = [
            str(executable),
            "--location", str(self.location),
            "--blobHost", self.host, "--blobPort", str(self.blob_port),
            "--queueHost", self.host, "--queuePort", str(self.queue_port),
            "--tableHost", self.host, "--tablePort", str(self.table_port),
            "--skipApiVersionCheck", "--loose", "--disableTelemetry",
        ]  # fmt: skip
        if not self.access_log:
            command.append("--silent")
        with open(self.location / "azurite.log", "ab") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Own process group: Ctrl-C in a terminal reaches the host, which stops
                # Azurite after its in-flight work has finished, not before.
                start_new_session=True,
                # SIGTERM, not SIGKILL, when this process dies: Azurite then saves what it
                # holds in memory (it writes to disk only every few seconds), so the storage
                # outlives a crashed host as Azure Storage would.
                preexec_fn=dies_with_this_process(signal.SIGTERM),
            )

    def wait_ready(self, timeout: float = 30.0) -> Azurite:
        """Wait until the three services accept connections; stop Azurite if they do not."""
        process = self._process
        if process is None:
            raise AzuriteError("Azurite not started")
        deadline = time.monotonic() + timeout
        ports = (self.blob_port, self.queue_port, self.table_port)
        while not all(is_listening(self.host, p) for p in ports):
            if process.poll() is not None:
                self._process = None
                raise AzuriteError(
                    f"Azurite exited with code {process.returncode}; "
                    f"see {self.location / 'azurite.log'}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise AzuriteError(f"Azurite not ready on ports {ports} within {timeout:.0f}s")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Azurite and wait for the process (and its node child) to exit."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
