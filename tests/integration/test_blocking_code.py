"""One orchestrator's code that blocks (a sleep, a busy loop) never stalls the host: HTTP,
timers and other instances keep going; the blocked steps fail with the orchestrator's name
and the stack where they blocked, and the instance ends Failed after the dequeue limit. An
async activity that blocks the loop is named in the log."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

import pytest

from tests.conftest import APPS, HostLauncher, HostProcess, Storage, unique, wait_until

pytestmark = pytest.mark.integration


def post(host: HostProcess, name: str, body: Any = None) -> dict[str, Any]:
    request = urllib.request.Request(
        host.url(f"/api/orchestrators/{name}"), data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def status(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def finished(url: str, timeout: float) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        got = status(url)
        return got if got["runtimeStatus"] not in ("Pending", "Running") else None

    result: dict[str, Any] = wait_until(done, timeout, 0.2, f"{url} to finish")
    return result


@pytest.fixture
def host(azurite: Storage, start_host: HostLauncher) -> HostProcess:
    hub = "Block" + unique("h").replace("-", "")[:12]
    return start_host(APPS / "blocking_app", env={"DURABLE_TEST_HUB": hub})


def test_blocking_orchestrators_fail_visibly_and_stall_nothing_else(host: HostProcess) -> None:
    slowest = 0.0
    probing = True

    def probe() -> None:
        nonlocal slowest
        while probing:
            started = time.monotonic()
            with urllib.request.urlopen(host.url("/api/health"), timeout=30) as response:
                response.read()
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        sleeper = post(host, "sleeper")
        spinner = post(host, "spinner")
        time.sleep(0.5)
        # A bystander started while both block completes as fast as ever.
        began = time.monotonic()
        chain = finished(post(host, "chain", 1)["statusQueryGetUri"], 20)
        bystander_seconds = time.monotonic() - began
        blocked = [finished(p["statusQueryGetUri"], 90) for p in (sleeper, spinner)]
    finally:
        probing = False
        prober.join()
    assert chain["runtimeStatus"] == "Completed" and chain["output"] == 4
    assert bystander_seconds < 5
    assert slowest < 1.0, f"the host stalled: a health request took {slowest:.1f} s"
    for name, final in zip(("sleeper", "spinner"), blocked, strict=True):
        assert final["runtimeStatus"] == "Failed", final
        assert "OrchestratorBlockedError" in final["output"]
        assert f"Orchestrator {name!r}" in final["output"]
    log = host.log()
    assert "time.sleep(30)" in log  # the stack where the sleeper blocked
    assert "while first:" in log  # ... and where the spinner looped
    assert log.count("made no progress") >= 4


def test_an_async_activity_that_blocks_the_loop_is_named_in_the_log(host: HostProcess) -> None:
    payload = post(host, "async_blocker")
    final = finished(payload["statusQueryGetUri"], 30)
    assert final["runtimeStatus"] == "Completed"
    log = host.wait_for_log("has blocked the event loop")
    assert "async activity 'blocking_async'" in log
    assert f"instance {payload['id']!r}" in log
    assert "time.sleep(3)" in log


def test_an_entity_operation_that_never_returns_fails_its_call_and_the_entity_lives_on(
    host: HostProcess,
) -> None:
    """Past functionTimeout (5 s here) an entity operation is abandoned, and its request
    fails at the dequeue limit; one that waits 3 s (as on I/O) is not a blocked step."""
    payload = post(host, "call_stuck")
    final = finished(payload["statusQueryGetUri"], 60)
    assert final["runtimeStatus"] == "Completed", final
    assert final["output"] == {"error": "PoisonMessageError", "then": "fine"}
    log = host.log()
    assert "while context.operation_name:" in log  # where it looped
    assert "entity operation 'hang' dropped" in log
