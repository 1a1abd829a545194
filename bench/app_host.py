"""The project's app on a local host with a task hub of its own, and the dashboard signed in
on it: what `bench/dashboard_bench.py` and `scripts/dashboard_screenshots.py` both run.

The host is `python -m orchestration host` on tests/apps/workflows_app (the root app with
fast test settings), with fresh keys and its log in the temporary folder; it starts Azurite
when none runs and the connection is the development one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import dies_with_this_process, free_port, stop_process  # noqa: E402

APP = ROOT / "tests" / "apps" / "workflows_app"
CHROMIUM = os.environ.get("ORCHESTRATION_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]
DEVELOPMENT = "UseDevelopmentStorage=true"


@dataclass(frozen=True)
class AppHost:
    base: str  # http://127.0.0.1:PORT
    key: str  # a function key
    hub: str
    connection: str

    @property
    def dashboard(self) -> str:
        return f"{self.base}/api/durabletask/dashboard/"


@contextlib.contextmanager
def app_host(hub_prefix: str) -> Iterator[AppHost]:
    """A host of the project's app on a fresh task hub, stopped (and its log removed) after."""
    connection = os.environ.get("AzureWebJobsStorage") or DEVELOPMENT  # noqa: SIM112
    hub = f"{hub_prefix}{uuid.uuid4().hex[:12]}"
    key = secrets.token_urlsafe(24)
    port = free_port()
    env = {
        **os.environ,
        "AzureWebJobsStorage": connection,
        "WORKFLOWS_TEST_HUB": hub,
        "FUNCTIONS_FUNCTION_KEY": key,
        "FUNCTIONS_MASTER_KEY": secrets.token_urlsafe(24),
        "PYTHONUNBUFFERED": "1",
    }
    log_path = Path(tempfile.gettempdir()) / f"app-host-{port}.log"
    command = [sys.executable, "-m", "orchestration", "host", "--app-dir", str(APP)]
    with open(log_path, "wb") as log:
        host = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=dies_with_this_process(),
        )
    try:
        deadline = time.monotonic() + 90
        while b"Host started" not in log_path.read_bytes():
            if host.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the host did not start:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.2)
        yield AppHost(f"http://127.0.0.1:{port}", key, hub, connection)
    finally:
        stop_process(host)
        log_path.unlink(missing_ok=True)


def signed_in_page(browser: Any, host: AppHost, **page_options: Any) -> Any:
    """A new page of `browser` on the host's dashboard, signed in with its key."""
    page = browser.new_page(**page_options)
    page.goto(host.dashboard)
    page.fill("#key", host.key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector(".cards")
    return page
