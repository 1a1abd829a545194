"""An azure-functions-durable app runs with its import line changed, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import APPS, HostProcess, Storage, launch_host, unique, wait_until
from tests.http_calls import call


@pytest.fixture(scope="module")
def host(azurite: Storage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    """One host for the module: each test starts its own instances (and entity keys)."""
    hub = "Compat" + unique("h").replace("-", "")[:20]
    log = tmp_path_factory.mktemp("df-compat") / "host.log"
    process = launch_host(
        APPS / "df_compat_app", azurite.connection_string, log, {"DURABLE_TEST_HUB": hub}
    )
    yield process
    process.stop()


def wait_for_output(status_url: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        code, status = call(status_url)
        if code == 200 and status["runtimeStatus"] in ("Completed", "Failed"):
            return status
        return None

    result: dict[str, Any] = wait_until(done, timeout=60, message="instance to finish")
    return result


def test_the_apps_own_starter_route_and_check_status_urls_work(host: HostProcess) -> None:
    code, payload = call(host.url("/api/orchestrators/total_lengths"), "POST", ["ab", "cde"])
    assert code == 202
    assert set(payload) >= {"id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri"}
    status = wait_for_output(payload["statusQueryGetUri"])
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == "5 letters"
    assert status["name"] == "total_lengths"


def test_a_blueprints_starter_and_orchestrator_work(host: HostProcess) -> None:
    code, payload = call(host.url("/api/greet"))
    assert code == 202
    status = wait_for_output(payload["statusQueryGetUri"])
    assert status["output"] == ["Hi Oslo", "Hi Lima"]


def test_an_unknown_orchestrator_name_fails_the_instance_readably(host: HostProcess) -> None:
    code, payload = call(host.url("/api/orchestrators/no_such_thing"), "POST")
    assert code == 202
    status = wait_for_output(payload["statusQueryGetUri"])
    assert status["runtimeStatus"] == "Failed"
    assert "No orchestrator named 'no_such_thing'" in status["output"]


def test_an_anonymous_app_keeps_instance_management_behind_keys(host: HostProcess) -> None:
    """DF samples write `DFApp(http_auth_level=ANONYMOUS)`: that level is for the app's own
    routes; the instance API still needs a key."""
    code, first = call(host.url("/api/orchestrators/total_lengths"), "POST", ["ab"])
    assert code == 202
    code, second = call(host.url("/api/orchestrators/total_lengths"), "POST", ["cd"])
    assert code == 202
    instance = first["id"]
    closed = [
        ("GET", "/api/durabletask/instances"),
        ("GET", f"/api/durabletask/instances/{instance}"),
        ("POST", f"/api/durabletask/instances/{instance}/terminate"),
        ("DELETE", f"/api/durabletask/instances/{instance}"),
        ("DELETE", "/api/durabletask/instances?createdTimeFrom=2000-01-01T00:00:00Z"),
        ("GET", "/api/durabletask/openapi.json"),
        ("POST", f"/api/v1.0/workflows/dapr/{instance}/terminate"),
    ]
    for method, path in closed:
        assert call(host.url(path), method)[0] == 401, (method, path)
    # The check-status URLs work without a key: they carry the instance's link code...
    status_url = first["statusQueryGetUri"]
    assert "/api/durabletask/links/" in status_url
    assert wait_for_output(status_url)["output"] == "2 letters"
    # ... which opens that instance and no other, and nothing but the links.
    code_param = status_url.split("code=", 1)[1]
    other = second["id"]
    assert call(host.url(f"/api/durabletask/links/{other}?code={code_param}"))[0] == 401
    assert call(host.url(f"/api/durabletask/links/{instance}"))[0] == 401
    assert call(host.url(f"/api/durabletask/links/{instance}?code={code_param}x"))[0] == 401
    assert call(host.url(f"/api/durabletask/instances/{instance}?code={code_param}"))[0] == 401
    assert call(host.url(f"/api/durabletask/instances?code={code_param}"))[0] == 401
    assert wait_for_output(second["statusQueryGetUri"])["output"] == "2 letters"


def test_an_apps_entities_work_from_its_client_and_orchestrators(host: HostProcess) -> None:
    key = unique("c")
    assert call(host.url(f"/api/counters/{key}")) == (200, {"exists": False, "state": None})
    assert call(host.url(f"/api/counters/{key}/add"), "POST", 5)[0] == 202

    def counted(expected: int) -> Any:
        code, body = call(host.url(f"/api/counters/{key}"))
        return body if code == 200 and body["state"] == expected else None

    assert wait_until(lambda: counted(5), timeout=30) == {"exists": True, "state": 5}
    code, payload = call(host.url("/api/orchestrators/counter_orchestrator"), "POST", key)
    assert code == 202
    status = wait_for_output(payload["statusQueryGetUri"])
    assert (status["runtimeStatus"], status["output"]) == ("Completed", 8)
