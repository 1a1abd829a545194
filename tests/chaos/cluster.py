"""Processes of a torture run: host processes that can be killed and restarted, and Azurite.

Every host runs in its own session (process group), so SIGKILL takes down the host and every
worker process it spawned at once, as a machine failure would. Hosts run with --no-azurite:
a host restarted while Azurite is down must not start an Azurite of its own.

Hosts and Azurite die with the harness, even SIGKILLed (orchestration.host.lifetime): start
them from the main thread. Until stopped they are tracked (tests/processes.py), so a harness
stopped by SIGTERM or an error stops them at exit at the latest.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestration.host.azurite import Azurite, free_port
from orchestration.host.lifetime import dies_with_this_process
from tests import processes

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "tests" / "apps" / "chaos_app"
READY_SINGLE = "Host started"
READY_WORKERS = "worker processes ready"
MASTER_KEY = "chaos-master-key"
FUNCTION_KEY = "chaos-function-key"


@dataclass
class HostProc:
    """One `python -m orchestration host` process (with its workers), restartable."""

    name: str
    connection_string: str
    log_path: Path
    env: dict[str, str]
    app_dir: Path = APP_DIR
    workers: int = 1
    grace: float = 5.0
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    starts: int = 0
    _log_offset: int = 0

    def start(self) -> None:
        """Start the process (not waiting for it to be ready)."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.port = free_port()
        env = dict(os.environ)
        env.pop("ORCHESTRATION_TEST_STORAGE", None)
        env.update(
            {
                "AzureWebJobsStorage": self.connection_string,
                "FUNCTIONS_MASTER_KEY": MASTER_KEY,
                "FUNCTIONS_FUNCTION_KEY": FUNCTION_KEY,
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.env)
        command = [
            sys.executable, "-m", "orchestration", "host", "--app-dir", str(self.app_dir),
            "--port", str(self.port), "--workers", str(self.workers),
            "--grace", str(self.grace), "--no-azurite",
        ]  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._log_offset = log.tell()
            log.write(f"\n===== chaos: start #{self.starts + 1} of {self.name} =====\n".encode())
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=dies_with_this_process(),
            )
        processes.track(self, self.kill)
        self.starts += 1

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        """What the current (latest) start printed."""
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def ready(self) -> bool:
        return (READY_WORKERS if self.workers > 1 else READY_SINGLE) in self.output()

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """True once the host reports ready; False if it exits or the time is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return True
            if not self.running:
                return False
            time.sleep(0.1)
        return False

    def kill(self) -> None:
        """SIGKILL the whole process group and wait for the host process to exit."""
        process = self.process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        processes.untrack(self)

    def terminate(self, timeout: float = 60.0) -> int | None:
        """SIGTERM the host (a graceful drain), wait for it; SIGKILL after `timeout`."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        # Worker processes of a supervisor exit with it; make sure none is left.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        processes.untrack(self)
        return process.returncode


@dataclass
class Storage:
    """Azurite with disk persistence on fixed ports, so it can be stopped and restarted."""

    location: Path
    azurite: Azurite | None = None
    restarts: int = 0

    async def start(self) -> str:
        """Start Azurite and wait until it serves; its connection string."""
        if self.azurite is None:
            self.azurite = Azurite(self.location)
        processes.track(self, self.stop)
        await self._start(self.azurite)
        return self.azurite.connection_string

    @property
    def connection_string(self) -> str:
        assert self.azurite is not None
        return self.azurite.connection_string

    def stop(self) -> None:
        if self.azurite is not None:
            self.azurite.stop()
        processes.untrack(self)

    async def restart(self, down_for: float = 0.0) -> None:
        """Stop Azurite (waiting for its exit), stay down `down_for` s, start it again on the
        same ports and location."""
        assert self.azurite is not None
        await asyncio.to_thread(self.azurite.stop)
        await asyncio.sleep(down_for)
        await self._start(self.azurite, timeout=60)
        self.restarts += 1

    @staticmethod
    async def _start(azurite: Azurite, timeout: float = 30.0) -> None:
        # Launched from the loop's (main) thread, so that it dies with this process; only
        # the wait goes to a worker thread.
        azurite.launch()
        await asyncio.to_thread(azurite.wait_ready, timeout)
