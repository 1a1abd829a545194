"""Take the README's dashboard pictures from a run of the bundled workflows.

Starts the local host on the project's app (tests/apps/workflows_app: the root app with fast
test settings) on a task hub of its own, runs a few of the bundled workflows (one failing,
one waiting for an event), then opens the dashboard in headless Chromium and saves
docs/dashboard-overview.png, docs/dashboard-instances.png and docs/dashboard-instance.png.
`make screenshots` runs it (Azurite is started by the host when none runs).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "apps" / "workflows_app"
DOCS = ROOT / "docs"
CHROMIUM = os.environ.get("ORCHESTRATION_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def call(method: str, url: str, key: str, payload: Any = None) -> tuple[int, Any]:
    body = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("x-functions-key", key)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as failure:
        return failure.code, None


def wait_terminal(base: str, key: str, instance_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = call("GET", f"{base}/api/durabletask/instances/{instance_id}", key)
        if status == 200 and body["runtimeStatus"] in ("Completed", "Failed", "Terminated"):
            return
        time.sleep(0.2)
    raise SystemExit(f"{instance_id} did not finish in {timeout:.0f} s")


def main() -> int:
    port = free_port()
    key = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "WORKFLOWS_TEST_HUB": f"Shots{uuid.uuid4().hex[:10]}",
        "FUNCTIONS_FUNCTION_KEY": key,
        "FUNCTIONS_MASTER_KEY": secrets.token_urlsafe(24),
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "orchestration", "host", "--app-dir", str(APP)]
    command += ["--port", str(port)]
    log = open(DOCS / ".screenshots-host.log", "wb")  # noqa: SIM115 - closed below
    host = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while b"Host started" not in (DOCS / ".screenshots-host.log").read_bytes():
            if host.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the host did not start: see docs/.screenshots-host.log")
            time.sleep(0.2)
        print("host ready; running the bundled workflows", flush=True)
        runs = [
            ("hello_sequence", "greetings-1", None),
            ("hello_sequence", "greetings-2", None),
            ("word_count", "count-1", {"text": "the quick brown fox jumps over the lazy dog"}),
            ("process_batch", "batch-1", {"items": ["Tokyo", "Seattle", "London"]}),
            ("retry_with_backoff", "retry-1", {"failures": 2}),
            ("retry_with_backoff", "retry-fails", {"failures": 9, "max_attempts": 3}),
            (
                "order_process",
                "order-1",
                {"items": [{"sku": "book", "quantity": 2}], "card": "4242"},
            ),
        ]
        for name, instance_id, payload in runs:
            call("POST", f"{base}/api/orchestrators/{name}/{instance_id}", key, payload)
        call(
            "POST",
            f"{base}/api/orchestrators/approval_workflow/approval-1",
            key,
            {"subject": "a laptop"},
        )
        for _name, instance_id, _payload in runs:
            wait_terminal(base, key, instance_id)
        print("taking screenshots", flush=True)
        page_url = f"{base}/api/durabletask/dashboard/"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(page_url)
            page.fill("#key", key)
            page.get_by_role("button", name="Sign in").click()
            expect(page.locator(".cards")).to_be_visible()
            page.screenshot(path=str(DOCS / "dashboard-overview.png"), full_page=True)
            page.goto(page_url + "#/instances")
            expect(page.locator("table.instances tbody tr").first).to_be_visible()
            page.screenshot(path=str(DOCS / "dashboard-instances.png"), full_page=True)
            page.goto(page_url + "#/instance/retry-fails")
            expect(page.locator(".gantt")).to_be_visible()
            page.screenshot(path=str(DOCS / "dashboard-instance.png"), full_page=True)
            browser.close()
        for name in ("overview", "instances", "instance"):
            print(f"wrote docs/dashboard-{name}.png")
        return 0
    finally:
        host.send_signal(signal.SIGTERM)
        try:
            host.wait(30)
        except subprocess.TimeoutExpired:
            host.kill()
        log.close()
        (DOCS / ".screenshots-host.log").unlink(missing_ok=True)


if __name__ == "__main__":
    raise SystemExit(main())
