"""The durable client's DF 1.7.0 methods, called from an app's own starters over HTTP.

tests/apps/df_client_app is written as an azure-functions-durable app (anonymous routes,
only the import line changed); its starters call `get_client_response_links`,
`get_status_by(instance_id_prefix=)`, `restart` and
`wait_for_completion_or_create_check_status_response`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import APPS, HostProcess, Storage, launch_host, unique, wait_until
from tests.integration.test_management_api import Reply, call

LINK_NAMES = {
    "id",
    "statusQueryGetUri",
    "sendEventPostUri",
    "terminatePostUri",
    "rewindPostUri",
    "purgeHistoryDeleteUri",
    "restartPostUri",
    "suspendPostUri",
    "resumePostUri",
}


@pytest.fixture(scope="module")
def host(azurite: Storage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    hub = "DfClient" + unique("h").replace("-", "")[:12]
    log = tmp_path_factory.mktemp("dfclient") / "host.log"
    process = launch_host(
        APPS / "df_client_app", azurite.connection_string, log, {"DURABLE_TEST_HUB": hub}
    )
    yield process
    process.stop()


def app(host: HostProcess, path: str, method: str = "GET", body: Any = None) -> Reply:
    return call(host.url(f"/api/{path}"), method, body, key=False)


def start(host: HostProcess, name: str, instance_id: str, payload: Any = None) -> str:
    reply = app(host, f"start/{name}/{instance_id}", "POST", payload)
    assert reply.status == 202, reply.raw
    return str(reply.json["id"])


def status(host: HostProcess, instance_id: str) -> dict[str, Any]:
    def read() -> dict[str, Any] | None:
        reply = call(host.url(f"/api/durabletask/instances/{instance_id}"))
        return reply.json if reply.status in (200, 202) else None

    result: dict[str, Any] = wait_until(read, 30, 0.1, f"{instance_id}'s status")
    return result


def wait_status(host: HostProcess, instance_id: str, *statuses: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        found = status(host, instance_id)
        return found if found["runtimeStatus"] in statuses else None

    result: dict[str, Any] = wait_until(reached, 60, 0.1, f"{instance_id} to be {statuses}")
    return result


def test_get_client_response_links_is_the_check_status_payload(host: HostProcess) -> None:
    instance_id = unique("links")
    check_status = app(host, f"start/echo/{instance_id}", "POST", 1)
    links = app(host, f"links/{instance_id}").json
    assert set(links["with_request"]) == LINK_NAMES
    # One builder: the check-status body is the same dict, for the same request kind.
    assert set(check_status.json) == LINK_NAMES
    for name in LINK_NAMES - {"id"}:
        assert urlsplit(links["with_request"][name]).path == urlsplit(check_status.json[name]).path
    assert links["with_request"]["id"] == instance_id
    assert links["without_request"] == links["payload"]
    # A request-less payload points at the app's configured origin, not the caller's.
    assert urlsplit(links["without_request"]["statusQueryGetUri"]).path.startswith(
        "/api/durabletask/"
    )
    followed = call(links["with_request"]["statusQueryGetUri"], key=False)
    assert followed.status in (200, 202) and followed.json["instanceId"] == instance_id


def test_get_status_by_filters_on_the_instance_id_prefix(host: HostProcess) -> None:
    prefix = unique("pre")
    ids = [start(host, "wait_event", f"{prefix}-{i}") for i in range(3)]
    other = start(host, "wait_event", unique("elsewhere"))
    for instance_id in [*ids, other]:
        wait_status(host, instance_id, "Running")
    assert json.loads(app(host, f"by_prefix/{prefix}").raw) == sorted(ids)
    assert app(host, f"terminate/{ids[0]}", "POST").status == 202
    wait_status(host, ids[0], "Terminated")
    running = json.loads(app(host, f"by_prefix/{prefix}?status=Running").raw)
    assert running == sorted(ids[1:])
    assert json.loads(app(host, f"by_prefix/{unique('none')}").raw) == []
    for instance_id in [*ids[1:], other]:
        app(host, f"terminate/{instance_id}", "POST")


def test_restart_starts_a_finished_instance_again_with_its_input(host: HostProcess) -> None:
    instance_id = start(host, "echo", unique("rs"), {"again": True})
    first = wait_status(host, instance_id, "Completed")
    new_id = json.loads(app(host, f"restart/{instance_id}", "POST").raw)
    assert new_id != instance_id
    restarted = wait_status(host, new_id, "Completed")
    assert restarted["name"] == "echo" and restarted["input"] == {"again": True}
    assert restarted["output"] == first["output"] == {"again": True}
    same = json.loads(app(host, f"restart/{instance_id}?new=false", "POST").raw)
    assert same == instance_id
    wait_until(
        lambda: (
            status(host, instance_id)["createdTime"] != first["createdTime"]
            and status(host, instance_id)["runtimeStatus"] == "Completed"
        ),
        60,
        0.1,
        "the instance to run again",
    )
    running = start(host, "wait_event", unique("rs"))
    wait_status(host, running, "Running")
    assert app(host, f"restart/{running}?new=false", "POST").status == 409
    assert app(host, f"restart/{unique('nobody')}", "POST").status == 409
    app(host, f"terminate/{running}", "POST")


def test_wait_for_completion_answers_as_df_does(host: HostProcess) -> None:
    done = start(host, "echo", unique("w"), [1, 2])
    completed = app(host, f"wait/{done}")
    assert completed.status == 200 and completed.json == [1, 2]
    waiting = start(host, "wait_event", unique("w"))
    pending = app(host, f"wait/{waiting}?timeout=300&interval=100")
    assert pending.status == 202 and set(pending.json) == LINK_NAMES
    assert app(host, f"terminate/{waiting}", "POST").status == 202
    wait_status(host, waiting, "Terminated")
    terminated = app(host, f"wait/{waiting}")
    assert terminated.status == 200 and terminated.json["runtimeStatus"] == "Terminated"
    bad = app(host, f"wait/{waiting}?timeout=100&interval=1000")
    assert bad.status == 400 and "should be bigger" in bad.raw.decode()
