"""A fan-out far wider than the connection pool completes, nothing lost, nothing doubled.

20,000 activities through the work-item queue on the host's shipped defaults: before the
sends were bounded and retried, 7,310 of 20,000 sends at once ended `OutcomeUnknown`, the
send path gave up without a log line, and the instance stayed Running with 15,603 results.
`ORCHESTRATION_WIDE_FAN_OUT=100000` runs the same test at 100,000 (a slow run: minutes).
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import APPS, HostLauncher, Storage, unique

pytestmark = pytest.mark.integration

WIDTH = int(os.environ.get("ORCHESTRATION_WIDE_FAN_OUT", "20000"))


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def post(url: str, body: Any) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.mark.timeout(1800)
def test_a_fan_out_of_20000_activities_completes_with_every_result_once(
    azurite: Storage, start_host: HostLauncher, tmp_path: Path
) -> None:
    hub = "Wide" + unique("h").replace("-", "")[:12]
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    host = start_host(APPS / "chaos_app", env={"CHAOS_HUB": hub, "CHAOS_LEDGER_DIR": str(ledger)})
    started = time.monotonic()
    payload = post(host.url("/api/orchestrators/fan"), {"n": WIDTH})
    status_url = payload["statusQueryGetUri"]
    deadline = started + 1500
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = get(status_url)
        if status["runtimeStatus"] not in ("Pending", "Running"):
            break
        time.sleep(2)
    elapsed = time.monotonic() - started
    print(f"fan-out of {WIDTH}: {status.get('runtimeStatus')} in {elapsed:.0f} s")
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == sum(i * i for i in range(WIDTH))

    history = get(status_url + "&showHistory=true")["historyEvents"]
    kinds = Counter(event["EventType"] for event in history)
    assert kinds["TaskScheduled"] == WIDTH
    assert kinds["TaskCompleted"] == WIDTH  # each result applied exactly once
    runs = Counter(
        line.split()[1]
        for log in ledger.glob("ledger-*.log")
        for line in log.read_text().splitlines()
    )
    assert len(runs) == WIDTH  # every activity ran (at least once)
    assert "send_failed" not in host.log() and "could not be sent" not in host.log()
