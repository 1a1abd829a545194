"""A test run, or a host, leaves no process behind however it ends.

Each case starts a run whose processes carry a unique environment variable (every
descendant inherits it, even one reparented to init), ends the run's top process, and then
looks for what is left by scanning /proc/*/environ for that variable.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestration.host.azurite import connection_string, free_port
from orchestration.host.lifetime import dies_with_this_process
from tests.conftest import APPS, READY_SINGLE, READY_WORKERS, ROOT, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

RUN_VARIABLE = "ORCHESTRATION_ORPHANS_RUN"
AZURITE = "node_modules/.bin/azurite"  # in Azurite's command line (a host's may say --no-azurite)
CHILD_READY = "child test: host and Azurite up"
CHILD_TEST = f"""
import time

from tests.conftest import APPS, HostLauncher


def test_holds_azurite_and_a_host(start_host: HostLauncher) -> None:
    start_host(APPS / "http_app", {{"OUT_QUEUE": "orphans-child"}})
    print({CHILD_READY!r}, flush=True)
    time.sleep(120)
"""


def processes_of(run: str) -> dict[int, str]:
    """The live processes (pid -> command line) whose environment marks them as `run`'s."""
    mark = f"{RUN_VARIABLE}={run}".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if mark in (entry / "environ").read_bytes().split(b"\0"):
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
                found[int(entry.name)] = command.decode(errors="replace").strip()
    return found


def assert_none_left(run: str, timeout: float = 10.0) -> None:
    """Wait for every process of `run` to be gone; fail, listing them, after `timeout` s."""
    deadline = time.monotonic() + timeout
    while left := processes_of(run):
        if time.monotonic() > deadline:
            listing = "\n".join(f"  {pid}: {command[:200]}" for pid, command in left.items())
            pytest.fail(f"still running {timeout:.0f}s later:\n{listing}")
        time.sleep(0.1)


@pytest.fixture
def run() -> Iterator[str]:
    """A unique mark for one run's processes; whatever still carries it is killed at the end,
    so a failing case leaves nothing behind either."""
    mark = uuid.uuid4().hex
    yield mark
    deadline = time.monotonic() + 10
    while (left := processes_of(mark)) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def start(
    command: list[str], run: str, log_path: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """Start `command` marked as `run`'s, its output in `log_path`; it dies with this process."""
    child_env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATION_TEST_STORAGE"}
    child_env.update(env, PYTHONUNBUFFERED="1", **{RUN_VARIABLE: run})
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=child_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=dies_with_this_process(),
        )


def started(process: subprocess.Popen[bytes], log_path: Path, text: str) -> bool:
    """True once `text` is in the output; fails the test if the process exits first."""
    if process.poll() is not None:
        pytest.fail(f"exited ({process.returncode}) before {text!r}:\n{log_path.read_text()}")
    return text in log_path.read_text(errors="replace")


def count(run: str, part: str) -> int:
    """How many of `run`'s live processes have `part` in their command line."""
    return sum(part in command for command in processes_of(run).values())


def start_child_pytest(run: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    """A pytest run of one test that holds the session Azurite and a host, then sleeps;
    returned once both are up."""
    test_file = tmp_path / "test_child.py"
    test_file.write_text(CHILD_TEST)
    log_path = tmp_path / "child.log"
    # Only our fixtures (-p tests.conftest), no plugins and no ini file: the others (hypothesis,
    # schemathesis) would add seconds to every start. Its own --basetemp, so that it does not
    # prune the temp dirs of other runs.
    command = [
        sys.executable, "-m", "pytest", "-q", "-s", "-p", "tests.conftest",
        "-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", str(ROOT),
        "--basetemp", str(tmp_path / "basetemp"), str(test_file),
    ]  # fmt: skip
    child = start(command, run, log_path, {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    wait_until(lambda: started(child, log_path, CHILD_READY), 60, message="the child test")
    assert count(run, AZURITE) == count(run, "orchestration host") == 1, processes_of(run)
    return child


def test_sigterm_to_pytest_runs_the_teardowns_and_leaves_no_process(
    run: str, tmp_path: Path
) -> None:
    child = start_child_pytest(run, tmp_path)
    child.send_signal(signal.SIGTERM)
    child.wait(20)
    assert_none_left(run)
    assert child.returncode != -signal.SIGTERM, "pytest died of SIGTERM: no teardown ran"
    (host_log,) = (tmp_path / "basetemp").rglob("host-0.log")
    assert "Host stopped" in host_log.read_text(), "the host was not stopped by its fixture"


def test_sigkill_to_pytest_leaves_no_process(run: str, tmp_path: Path) -> None:
    child = start_child_pytest(run, tmp_path)
    child.kill()
    child.wait(10)
    assert_none_left(run)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_to_a_host_takes_its_azurite_and_workers_along(
    run: str, tmp_path: Path, workers: int
) -> None:
    app = tmp_path / "app"
    shutil.copytree(APPS / "http_app", app, ignore=shutil.ignore_patterns("__pycache__"))
    ports = (free_port(), free_port(), free_port())
    settings = {
        "AzureWebJobsStorage": connection_string("127.0.0.1", *ports),
        "FUNCTIONS_MASTER_KEY": "orphans-master-key",
        "FUNCTIONS_FUNCTION_KEY": "orphans-function-key",
        "OUT_QUEUE": "orphans-host",
    }
    command = [
        sys.executable, "-m", "orchestration", "host", "--app-dir", str(app),
        "--port", str(free_port()), "--workers", str(workers), "--grace", "5",
    ]  # fmt: skip
    log_path = tmp_path / "host.log"
    host = start(command, run, log_path, settings)
    ready = READY_WORKERS if workers > 1 else READY_SINGLE
    wait_until(lambda: started(host, log_path, ready), 60, message="the host")
    assert "Started Azurite" in log_path.read_text()
    assert count(run, AZURITE) == 1, processes_of(run)
    assert count(run, "multiprocessing.spawn") == (workers if workers > 1 else 0)
    host.kill()
    host.wait(10)
    assert_none_left(run)


def test_sigterm_to_the_chaos_harness_leaves_no_process(run: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    command = [
        sys.executable, "-m", "tests.chaos", "--hosts", "1", "--instances", "20",
        "--deadline", "60", "--json", str(tmp_path / "report.json"), "--work-dir", str(work),
    ]  # fmt: skip
    log_path = tmp_path / "chaos.log"
    harness = start(command, run, log_path, {})

    def both_up() -> bool:
        if harness.poll() is not None:
            pytest.fail(f"the harness exited ({harness.returncode}):\n{log_path.read_text()}")
        return count(run, AZURITE) == count(run, "orchestration host") == 1

    # Not waiting for the host to be ready: it is a process to stop all the same.
    wait_until(both_up, 60, message="the harness's Azurite and host")
    harness.send_signal(signal.SIGTERM)
    harness.wait(30)
    assert_none_left(run)
    assert harness.returncode == 130, log_path.read_text()
