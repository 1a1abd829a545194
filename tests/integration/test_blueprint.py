"""DF's blueprint shapes over HTTP on the local host: durable blueprints on a plain
`func.FunctionApp` (DF's own blueprint sample) and on a `DFApp`."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from tests.conftest import APPS, HostLauncher, HostProcess, unique, wait_until
from tests.http_calls import call


def start(start_host: HostLauncher, app: str) -> HostProcess:
    hub = "Bp" + unique("h").replace("-", "")[:20]
    return start_host(APPS / app, env={"DURABLE_TEST_HUB": hub})


def finished(status_url: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        code, status = call(status_url)
        if code == 200 and status["runtimeStatus"] in ("Completed", "Failed"):
            return status
        return None

    result: dict[str, Any] = wait_until(done, timeout=60, message="instance to finish")
    return result


def test_blueprints_on_a_plain_function_app_run_chaining_and_fan_out(
    start_host: HostLauncher,
) -> None:
    host = start(start_host, "blueprint_app")
    code, payload = call(host.url("/api/startOrchestrator"))
    assert code == 202, payload
    status = finished(payload["statusQueryGetUri"])
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]

    code, payload = call(host.url("/api/orchestrators/sum_of_squares"), "POST", [1, 2, 3, 4])
    assert code == 202, payload
    status = finished(payload["statusQueryGetUri"])
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"squares": [1, 4, 9, 16], "total": 30, "greeting": "Hello 30!"}

    # The app's plain function, and the management API the engine brought along.
    with urllib.request.urlopen(host.url("/api/HttpTrigger?name=ann"), timeout=30) as response:
        assert response.read().startswith(b"Hello, ann.")
    code, _ = call(host.url("/api/durabletask/instances"))
    assert code == 401  # the engine's management API is there, behind keys
    banner = host.log()
    assert banner.count("durable_orchestrator_worker") >= 1
    assert "durable_http_start" not in banner  # the app's own starter route replaced it


def test_the_same_blueprints_on_a_dfapp_still_work(start_host: HostLauncher) -> None:
    host = start(start_host, "blueprint_dfapp")
    code, payload = call(host.url("/api/startOrchestrator"))
    assert code == 202, payload
    assert finished(payload["statusQueryGetUri"])["output"][0] == "Hello Tokyo!"
    code, payload = call(host.url("/api/orchestrators/both"), "POST", 7)
    assert code == 202, payload
    status = finished(payload["statusQueryGetUri"])
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == "Hello 49!"


def test_a_shape_that_cannot_work_stops_the_host_at_start_up(start_host: HostLauncher) -> None:
    host = start_host(APPS / "blueprint_refused_app", env={"DURABLE_TEST_HUB": "RefusedHub"},
                      wait=False)  # fmt: skip
    assert host.wait_exit() == 1
    log = host.log()
    assert "function 'start'" in log
    assert "task_hub='SomeOtherAppsHub'" in log and "drop task_hub=" in log
