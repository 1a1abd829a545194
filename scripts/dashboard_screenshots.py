"""Take the README's dashboard pictures from a run of the bundled workflows.

Starts the local host on the project's app on a task hub of its own (bench/app_host.py),
runs a few of the bundled workflows (one failing, one waiting for an event), then opens the
dashboard in headless Chromium and saves docs/dashboard-overview.png,
docs/dashboard-instances.png and docs/dashboard-instance.png.
`make screenshots` runs it (Azurite is started by the host when none runs).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.app_host import CHROMIUM, CHROMIUM_ARGS, app_host, signed_in_page

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


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
    with app_host("Shots") as host:
        base, key = host.base, host.key
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
        page_url = host.dashboard
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = signed_in_page(browser, host, viewport={"width": 1280, "height": 860})
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


if __name__ == "__main__":
    raise SystemExit(main())
