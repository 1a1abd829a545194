"""The paths of Durable Functions' own HTTP API documentation on the local host, on Azurite.

DF's extension serves its API at /runtime/webhooks/durabletask/...; the local host serves
the engine's management functions there too (tests/apps/management_app, function keys
required), so the documentation's curl lines work as written. Same functions, same keys,
same answers as below /api/durabletask/; the URLs handed out stay below /api.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest

from tests.conftest import (
    APPS,
    TEST_FUNCTION_KEY,
    TEST_MASTER_KEY,
    HostProcess,
    Storage,
    launch_host,
    unique,
    wait_until,
)
from tests.integration.test_management_api import Reply, call

WEBHOOK = "/runtime/webhooks/durabletask"


@pytest.fixture(scope="module")
def hub() -> str:
    return "DfPaths" + unique("h").replace("-", "")[:12]


@pytest.fixture(scope="module")
def host(
    azurite: Storage, tmp_path_factory: pytest.TempPathFactory, hub: str
) -> Iterator[HostProcess]:
    log = tmp_path_factory.mktemp("dfpaths") / "host.log"
    process = launch_host(
        APPS / "management_app", azurite.connection_string, log, {"DURABLE_TEST_HUB": hub}
    )
    yield process
    process.stop()


def df(host: HostProcess, path: str, **params: str) -> str:
    """A URL of DF's API as its documentation writes it."""
    query = f"?{urlencode(params)}" if params else ""
    return host.url(f"{WEBHOOK}/{path}{query}")


def ours(host: HostProcess, path: str, **params: str) -> str:
    query = f"?{urlencode(params)}" if params else ""
    return host.url(f"/api/durabletask/{path}{query}")


def inst(instance_id: str, suffix: str = "") -> str:
    return f"instances/{quote(instance_id, safe='')}{suffix}"


def start(host: HostProcess, name: str, payload: Any = None, instance_id: str = "") -> Reply:
    path = f"orchestrators/{name}" + (f"/{quote(instance_id, safe='')}" if instance_id else "")
    return call(df(host, path), "POST", payload)


def started(host: HostProcess, name: str, payload: Any = None, instance_id: str = "") -> str:
    reply = start(host, name, payload, instance_id)
    assert reply.status == 202, reply.raw
    return str(reply.json["id"])


def wait_status(host: HostProcess, instance_id: str, *statuses: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        reply = call(df(host, inst(instance_id)))
        assert reply.status in (200, 202), reply.raw
        return reply.json if reply.json["runtimeStatus"] in statuses else None

    result: dict[str, Any] = wait_until(reached, 60, 0.1, f"{instance_id} to be {statuses}")
    return result


def test_the_start_api_answers_the_check_status_payload_with_urls_below_api(
    host: HostProcess,
) -> None:
    instance_id = unique("df")
    reply = start(host, "echo", {"n": 1}, instance_id)
    assert reply.status == 202
    payload = reply.json
    assert payload["id"] == instance_id
    assert reply.headers["Location"] == payload["statusQueryGetUri"]
    # On Azure /runtime/webhooks never reaches the app: the URLs handed out are the app's.
    for name in ("statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "restartPostUri"):
        url = urlsplit(payload[name])
        assert url.path.startswith(f"/api/durabletask/instances/{instance_id}"), name
        assert f"code={TEST_FUNCTION_KEY}" in url.query
    assert wait_status(host, instance_id, "Completed")["output"] == {"n": 1}
    generated = started(host, "echo", 5)
    assert wait_status(host, generated, "Completed")["output"] == 5
    assert start(host, "no_such_orchestrator").status == 400
    assert start(host, "wait_event", None, instance_id="dup-" + instance_id).status == 202
    assert start(host, "wait_event", None, instance_id="dup-" + instance_id).status == 409


def test_df_paths_need_a_key_as_ours_do(host: HostProcess) -> None:
    instance_id = started(host, "echo", "k")
    wait_status(host, instance_id, "Completed")
    for url, method in [
        (df(host, inst(instance_id)), "GET"),
        (df(host, "instances"), "GET"),
        (df(host, "orchestrators/echo"), "POST"),
        (df(host, inst(instance_id, "/terminate")), "POST"),
        (df(host, "entities/counter/c1"), "GET"),
    ]:
        assert call(url, method, key=False).status == 401, url
        assert call(url, method, key=False, headers={"x-functions-key": "wrong"}).status == 401
    # The key as DF's URLs carry it (code=), and the master key, as for our own paths.
    assert call(df(host, inst(instance_id), code=TEST_FUNCTION_KEY), key=False).status == 200
    master = {"x-functions-key": TEST_MASTER_KEY}
    assert call(df(host, inst(instance_id)), key=False, headers=master).status == 200


def test_status_answers_as_our_own_path_does(host: HostProcess) -> None:
    instance_id = started(host, "echo", ["x"])
    wait_status(host, instance_id, "Completed")
    params = {"showHistory": "true", "showHistoryOutput": "true", "showInput": "false"}
    theirs = call(df(host, inst(instance_id), **params))
    mine = call(ours(host, inst(instance_id), **params))
    assert theirs.status == mine.status == 200
    assert theirs.json == mine.json
    assert theirs.json["input"] is None and theirs.json["historyEvents"]
    running = started(host, "wait_event")
    wait_status(host, running, "Running")
    reply = call(df(host, inst(running)))
    assert reply.status == 202 and reply.headers["Location"].startswith(host.url(WEBHOOK))
    assert call(df(host, inst(unique("nobody")))).status == 404


def test_task_hub_and_connection_params_name_this_app_s_hub_only(
    host: HostProcess, hub: str
) -> None:
    instance_id = started(host, "echo", 1)
    wait_status(host, instance_id, "Completed")
    # What DF's own check-status URLs carry: taskHub=<hub>&connection=Storage.
    same = call(df(host, inst(instance_id), taskHub=hub.lower(), connection="Storage"))
    assert same.status == 200 and same.json["instanceId"] == instance_id
    assert call(df(host, inst(instance_id), connection="AzureWebJobsStorage")).status == 200
    other = call(df(host, inst(instance_id), taskHub="SomeOtherHub"))
    assert other.status == 400 and "SomeOtherHub" in other.json["detail"]
    assert call(df(host, inst(instance_id), connection="OtherAccount")).status == 400
    assert call(ours(host, inst(instance_id), taskHub="SomeOtherHub")).status == 400


def test_list_with_dfs_filters_and_continuation(host: HostProcess) -> None:
    prefix = unique("dfl")
    since = datetime.now(UTC) - timedelta(seconds=1)
    ids = [started(host, "wait_event", None, f"{prefix}-{i}") for i in range(5)]
    for instance_id in ids:
        wait_status(host, instance_id, "Running")
    call(df(host, inst(ids[0], "/terminate"), reason="done"), "POST")
    wait_status(host, ids[0], "Terminated")
    window = {
        "createdTimeFrom": since.isoformat(),
        "createdTimeTo": (datetime.now(UTC) + timedelta(minutes=1)).isoformat(),
    }
    running = call(
        df(host, "instances", instanceIdPrefix=prefix, runtimeStatus="Running", **window)
    )
    assert sorted(s["instanceId"] for s in running.json) == ids[1:]
    seen: list[str] = []
    token = None
    while True:
        headers = {"x-ms-continuation-token": token} if token else {}
        page = call(df(host, "instances", instanceIdPrefix=prefix, top="2"), headers=headers)
        assert page.status == 200 and len(page.json) <= 2
        seen += [s["instanceId"] for s in page.json]
        token = {k.lower(): v for k, v in page.headers.items()}.get("x-ms-continuation-token")
        if not token:
            break
    assert sorted(seen) == ids
    for instance_id in ids[1:]:
        call(df(host, inst(instance_id, "/terminate")), "POST")


def test_raise_event_answers_202_then_410_once_finished_and_404_unknown(
    host: HostProcess,
) -> None:
    instance_id = started(host, "wait_event")
    wait_status(host, instance_id, "Running")
    sent = call(df(host, inst(instance_id, "/raiseEvent/Go")), "POST", {"ok": True})
    assert sent.status == 202
    assert wait_status(host, instance_id, "Completed")["output"] == {"got": {"ok": True}}
    again = call(df(host, inst(instance_id, "/raiseEvent/Go")), "POST", 1)
    assert again.status == 410
    assert call(df(host, inst(unique("nobody"), "/raiseEvent/Go")), "POST", 1).status == 404


def test_terminate_suspend_resume_rewind_restart(host: HostProcess) -> None:
    instance_id = started(host, "wait_event")
    wait_status(host, instance_id, "Running")
    assert call(df(host, inst(instance_id, "/suspend"), reason="hold"), "POST").status == 202
    wait_status(host, instance_id, "Suspended")
    assert call(df(host, inst(instance_id, "/resume"), reason="go"), "POST").status == 202
    wait_status(host, instance_id, "Running")
    assert call(df(host, inst(instance_id, "/rewind")), "POST").status == 412
    assert call(df(host, inst(instance_id, "/terminate"), reason="stop"), "POST").status == 202
    assert wait_status(host, instance_id, "Terminated")["output"] == "stop"
    assert call(df(host, inst(instance_id, "/terminate")), "POST").status == 410
    assert call(df(host, inst(unique("nobody"), "/suspend")), "POST").status == 404

    failing = started(host, "fail_once")
    wait_status(host, failing, "Failed")
    assert call(df(host, inst(failing, "/rewind"), reason="retry"), "POST").status == 202
    assert wait_status(host, failing, "Completed")["output"] == "ok after 2"

    restarted = call(df(host, inst(failing, "/restart")), "POST")
    assert restarted.status == 202 and restarted.json["id"] != failing
    assert urlsplit(restarted.json["statusQueryGetUri"]).path.startswith("/api/durabletask/")
    same = call(df(host, inst(failing, "/restart"), restartWithNewInstanceId="false"), "POST")
    assert same.status == 202 and same.json["id"] == failing


def test_purge_one_and_purge_by_filter(host: HostProcess) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    ids = [started(host, "echo", i, f"{unique('dfp')}") for i in range(3)]
    for instance_id in ids:
        wait_status(host, instance_id, "Completed")
    one = call(df(host, inst(ids[0])), "DELETE")
    assert one.status == 200 and one.json == {"instancesDeleted": 1}
    assert call(df(host, inst(ids[0]))).status == 404
    assert call(df(host, inst(ids[0])), "DELETE").status == 404
    assert call(df(host, "instances"), "DELETE").status == 400  # createdTimeFrom is required
    window = {"createdTimeFrom": since.isoformat(), "runtimeStatus": "Completed"}
    many = call(df(host, "instances", **window), "DELETE")
    assert many.status == 200 and many.json["instancesDeleted"] >= 2
    assert all(call(df(host, inst(i))).status == 404 for i in ids)


def test_entities_read_signal_and_list(host: HostProcess) -> None:
    key = unique("c")
    assert call(df(host, f"entities/counter/{key}")).status == 404
    signalled = call(df(host, f"entities/counter/{key}", op="add"), "POST", 5)
    assert signalled.status == 202

    def state() -> Any:
        reply = call(df(host, f"entities/counter/{key}"))
        return reply.json if reply.status == 200 else None

    assert wait_until(state, 60, 0.1, "the entity's state") == 5
    assert call(ours(host, f"entities/counter/{key}")).json == 5
    listed = call(df(host, "entities/counter", fetchState="true"))
    assert listed.status == 200
    assert any(entry.get("state") == 5 for entry in listed.json)


def test_other_webhook_paths_are_not_ours(host: HostProcess) -> None:
    assert call(host.url("/runtime/webhooks/eventgrid/instances")).status == 404
    assert call(df(host, "openapi.json")).status == 404
    assert call(host.url("/runtime/webhooks/durabletask/v1.0/workflows/dapr/x")).status == 404
