"""`python -m orchestration azurite --install` in an app folder that has no Azurite: it is
installed into the app's node_modules with npm, started, serves storage, and stops on SIGTERM
(npm's cache, warm after `make setup`, keeps this to seconds)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.host.azurite import connection_string, free_port, is_listening
from orchestration.host.lifetime import dies_with_this_process
from tests.conftest import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_azurite_is_installed_into_the_app_and_runs(tmp_path: Path) -> None:
    app = tmp_path / "their-app"
    app.mkdir()
    ports = [free_port() for _ in range(3)]
    # No Azurite to find: not in the app, its parents, the working directory or PATH.
    node_dir = str(Path(shutil.which("node") or "/usr/bin/node").parent)
    env = {**os.environ, "PATH": f"{node_dir}:/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    without = subprocess.run(
        [sys.executable, "-m", "orchestration", "azurite", "--app-dir", str(app),
         "--ports", ",".join(map(str, ports))],
        cwd=app, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert without.returncode == 2
    assert "npm install azurite@3.35.0" in without.stdout and "--install" in without.stdout
    log_path = tmp_path / "azurite-command.log"
    with open(log_path, "wb") as log:
        command = subprocess.Popen(
            [sys.executable, "-m", "orchestration", "azurite", "--install", "--app-dir",
             str(app), "--ports", ",".join(map(str, ports))],
            cwd=app, env=env, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=dies_with_this_process(),
        )  # fmt: skip
    try:
        wait_until(
            lambda: b"Ctrl-C stops it" in log_path.read_bytes() or command.poll() is not None,
            timeout=240,
            interval=0.5,
            message="Azurite to be installed and started",
        )
        assert command.poll() is None, log_path.read_text()
        assert (app / "node_modules" / ".bin" / "azurite").exists()
        assert all(is_listening("127.0.0.1", port) for port in ports)
        # It is storage: a queue can be made and listed through the SDK.
        from azure.storage.queue import QueueServiceClient

        service = QueueServiceClient.from_connection_string(connection_string("127.0.0.1", *ports))
        service.create_queue("installed")
        assert [q.name for q in service.list_queues()] == ["installed"]
        assert (app / ".azurite").is_dir()
    finally:
        command.send_signal(signal.SIGTERM)
        assert command.wait(30) == 0
    assert not any(is_listening("127.0.0.1", port) for port in ports)
