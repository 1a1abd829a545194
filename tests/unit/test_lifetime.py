"""A child started through orchestration.host.lifetime dies with its parent (Linux)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestration.host.lifetime import dies_with_this_process

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG")

ROOT = Path(__file__).resolve().parents[2]


def python(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"


def test_a_child_dies_when_its_parent_is_killed() -> None:
    parent = python(
        "import subprocess, time\n"
        "from orchestration.host.lifetime import dies_with_this_process\n"
        "child = subprocess.Popen(['sleep', '60'], preexec_fn=dies_with_this_process())\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 5
        while not gone(child):
            assert time.monotonic() < deadline, "the child outlived its parent"
            time.sleep(0.05)
    finally:
        if not gone(child):
            os.kill(child, signal.SIGKILL)


def test_a_child_whose_parent_is_already_gone_dies_at_once() -> None:
    # The parent pid the child was told of is not its parent: as if the parent had died
    # between the fork and the prctl call.
    child = python(
        "from orchestration.host.lifetime import die_with_parent\n"
        "die_with_parent(0)\n"
        "print('still running', flush=True)\n"
    )
    out, _ = child.communicate(timeout=30)
    assert (child.returncode, out) == (-signal.SIGKILL, "")


def test_no_death_signal_for_a_child_started_off_the_main_thread() -> None:
    # The kernel would signal the child when that thread ends, long before the process.
    found: list[object] = []
    thread = threading.Thread(target=lambda: found.append(dies_with_this_process()))
    thread.start()
    thread.join()
    assert found == [None]
    assert dies_with_this_process() is not None
