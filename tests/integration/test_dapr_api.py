"""Dapr's workflow HTTP API on the same engine, over HTTP on the local host, on Azurite.

tests/apps/management_app serves it below /api with function keys; tests/apps/dapr_root_app
sets routePrefix "" and an anonymous management API, so its paths are exactly Dapr's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.conftest import APPS, HostProcess, Storage, launch_host, unique, wait_until
from tests.integration.test_management_api import call

DAPR = "/api/v1.0/workflows/dapr"


@pytest.fixture(scope="module")
def host(azurite: Storage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    hub = "Dapr" + unique("h").replace("-", "")[:16]
    log = tmp_path_factory.mktemp("dapr") / "host.log"
    process = launch_host(
        APPS / "management_app", azurite.connection_string, log, {"DURABLE_TEST_HUB": hub}
    )
    yield process
    process.stop()


def dapr(host: HostProcess, path: str) -> str:
    return host.url(f"{DAPR}/{path}")


def start(host: HostProcess, name: str, payload: Any = None, instance_id: str = "") -> str:
    query = f"?instanceID={quote(instance_id, safe='')}" if instance_id else ""
    reply = call(dapr(host, f"{name}/start{query}"), "POST", payload)
    assert reply.status == 202, reply.raw
    assert set(reply.json) == {"instanceID"}
    return str(reply.json["instanceID"])


def get(host: HostProcess, instance_id: str, prefix: str = DAPR, key: bool = True) -> Any:
    reply = call(host.url(f"{prefix}/{quote(instance_id, safe='')}"), key=key)
    assert reply.status == 200, reply.raw
    return reply.json


def wait_for(host: HostProcess, instance_id: str, status: str, **kwargs: Any) -> Any:
    def reached() -> Any:
        got = get(host, instance_id, **kwargs)
        return got if got["runtimeStatus"] == status else None

    return wait_until(reached, 60, 0.1, f"{instance_id} to be {status}")


def op(host: HostProcess, instance_id: str, verb: str, body: Any = None) -> Any:
    return call(dapr(host, f"{quote(instance_id, safe='')}/{verb}"), "POST", body)


def test_start_and_get_in_daprs_shape(host: HostProcess) -> None:
    instance_id = unique("dapr")
    assert start(host, "echo", {"sku": "book"}, instance_id) == instance_id
    status = wait_for(host, instance_id, "COMPLETED")
    assert set(status) == {
        "instanceID",
        "workflowName",
        "createdAt",
        "lastUpdatedAt",
        "runtimeStatus",
        "properties",
    }
    assert status["instanceID"] == instance_id and status["workflowName"] == "echo"
    assert status["createdAt"].endswith("Z") and status["lastUpdatedAt"].endswith("Z")
    properties = status["properties"]
    assert properties["dapr.workflow.input"] == '{"sku": "book"}'
    assert properties["dapr.workflow.output"] == '{"sku": "book"}'
    generated = start(host, "echo", 3)
    assert wait_for(host, generated, "COMPLETED")["properties"]["dapr.workflow.output"] == "3"


def test_start_refuses_bad_input(host: HostProcess) -> None:
    unknown = call(dapr(host, "nope/start"), "POST")
    assert unknown.status == 400 and unknown.json["errorCode"] == "ERR_WORKFLOW_NAME_NOT_FOUND"
    assert "echo" in unknown.json["detail"]
    malformed = call(dapr(host, "echo/start"), "POST", raw=b"[1,")
    assert malformed.status == 400 and malformed.json["error"] == "Malformed JSON"
    assert malformed.json["errorCode"] == "ERR_BAD_REQUEST"
    long_id = call(dapr(host, "echo/start?instanceID=" + "x" * 257), "POST")
    assert long_id.status == 400
    running = start(host, "wait_event")
    again = call(dapr(host, f"wait_event/start?instanceID={running}"), "POST")
    assert again.status == 409 and again.json["errorCode"] == "ERR_INSTANCE_ID_EXISTS"
    too_big = call(dapr(host, "echo/start"), "POST", "y" * 70_000)
    assert too_big.status == 413


def test_raise_event_pause_resume_terminate_and_purge(host: HostProcess) -> None:
    instance_id = start(host, "wait_event")
    wait_for(host, instance_id, "RUNNING")
    assert op(host, instance_id, "pause").status == 202
    wait_for(host, instance_id, "SUSPENDED")
    assert op(host, instance_id, "resume").status == 202
    wait_for(host, instance_id, "RUNNING")
    assert op(host, instance_id, "purge").status == 412
    assert op(host, instance_id, "raiseEvent/Go", {"ok": 1}).status == 202
    done = wait_for(host, instance_id, "COMPLETED")
    assert done["properties"]["dapr.workflow.output"] == '{"got": {"ok": 1}}'
    for verb in ("terminate", "pause", "resume", "raiseEvent/Go"):
        gone = op(host, instance_id, verb)
        assert gone.status == 410 and gone.json["errorCode"] == "ERR_WORKFLOW_NOT_RUNNING"
    assert op(host, instance_id, "purge").status == 202
    missing = call(dapr(host, quote(instance_id, safe="")))
    assert missing.status == 404 and missing.json["errorCode"] == "ERR_INSTANCE_ID_NOT_FOUND"

    other = start(host, "wait_event")
    wait_for(host, other, "RUNNING")
    assert op(host, other, "terminate").status == 202
    assert wait_for(host, other, "TERMINATED")["workflowName"] == "wait_event"
    for verb in ("terminate", "pause", "resume", "purge", "raiseEvent/Go"):
        assert op(host, unique("nobody"), verb).status == 404


def test_a_failed_workflow_reports_its_failure(host: HostProcess) -> None:
    instance_id = start(host, "fail_once")
    status = wait_for(host, instance_id, "FAILED")
    properties = status["properties"]
    assert "first attempt fails" in properties["dapr.workflow.failure.error_message"]
    assert properties["dapr.workflow.failure.error_type"]


@pytest.mark.parametrize("version", ["v1.0-beta1", "v1.0-alpha1"])
def test_the_older_api_versions_answer_the_same_paths(host: HostProcess, version: str) -> None:
    base = f"/api/{version}/workflows/dapr"
    instance_id = unique(version.replace(".", ""))
    reply = call(host.url(f"{base}/wait_event/start?instanceID={instance_id}"), "POST", 7)
    assert reply.status == 202 and reply.json == {"instanceID": instance_id}
    status = wait_for(host, instance_id, "RUNNING", prefix=base)
    assert status == get(host, instance_id)  # the same shape as v1.0's
    assert status["properties"]["dapr.workflow.input"] == "7"

    def verb(path: str, body: Any = None) -> int:
        return call(host.url(f"{base}/{instance_id}/{path}"), "POST", body).status

    assert verb("pause") == 202
    wait_for(host, instance_id, "SUSPENDED", prefix=base)
    assert verb("resume") == 202
    wait_for(host, instance_id, "RUNNING", prefix=base)
    assert verb("purge") == 412
    assert verb("raiseEvent/Go", "now") == 202
    done = wait_for(host, instance_id, "COMPLETED", prefix=base)
    assert done["properties"]["dapr.workflow.output"] == '{"got": "now"}'
    assert verb("terminate") == 410
    assert verb("purge") == 202
    assert call(host.url(f"{base}/{instance_id}")).status == 404
    assert call(host.url(f"{base}/echo/start"), "POST", key=False).status == 401


def test_dapr_1_10_alpha_forms_take_the_instance_id_in_the_path(host: HostProcess) -> None:
    base = "/api/v1.0-alpha1/workflows/dapr"
    instance_id = unique("a110")
    reply = call(host.url(f"{base}/echo/{instance_id}/start"), "POST", {"sku": "pen"})
    assert reply.status == 202 and reply.json == {"instanceID": instance_id}
    done = wait_for(host, instance_id, "COMPLETED")
    assert done["properties"]["dapr.workflow.output"] == '{"sku": "pen"}'
    # 1.10 read an instance at {workflowName}/{instanceId}.
    by_name = call(host.url(f"{base}/echo/{instance_id}"))
    assert by_name.status == 200 and by_name.json == done
    running = unique("a110")
    assert call(host.url(f"{base}/wait_event/{running}/start"), "POST").status == 202
    again = call(host.url(f"{base}/wait_event/{running}/start"), "POST")
    assert again.status == 409 and again.json["errorCode"] == "ERR_INSTANCE_ID_EXISTS"
    assert call(host.url(f"{base}/{running}/terminate"), "POST").status == 202
    wait_for(host, running, "TERMINATED")
    assert call(host.url(f"{base}/nope/{unique('x')}/start"), "POST").status == 400
    assert call(host.url(f"{base}/echo/{unique('x')}/start"), "POST", key=False).status == 401


def test_the_dapr_api_needs_a_key_here(host: HostProcess) -> None:
    assert call(dapr(host, "echo/start"), "POST", key=False).status == 401
    assert call(dapr(host, "anything"), key=False).status == 401


def test_with_an_empty_route_prefix_the_paths_are_daprs_and_anonymous(
    azurite: Storage, tmp_path_factory: pytest.TempPathFactory
) -> None:
    hub = "DaprRoot" + unique("h").replace("-", "")[:12]
    log = tmp_path_factory.mktemp("dapr-root") / "host.log"
    env = {"DURABLE_TEST_HUB": hub}
    root = launch_host(APPS / "dapr_root_app", azurite.connection_string, log, env)
    try:
        reply = call(
            root.url("/v1.0/workflows/dapr/greet/start?instanceID=g1"), "POST", "Ann", key=False
        )
        assert reply.status == 202 and reply.json == {"instanceID": "g1"}
        done = wait_for(root, "g1", "COMPLETED", prefix="/v1.0/workflows/dapr", key=False)
        assert done["properties"]["dapr.workflow.output"] == '"Hello Ann"'
        assert done["properties"]["dapr.workflow.input"] == '"Ann"'
        df_status = call(root.url("/durabletask/instances/g1"), key=False)
        assert df_status.status == 200 and df_status.json["output"] == "Hello Ann"
        # The DF starter: the request had no key, so the URLs are the instance's links.
        started = call(root.url("/orchestrators/greet"), "POST", "Bo", key=False)
        assert started.status == 202
        url = started.json["statusQueryGetUri"]
        assert url.startswith(root.url("/durabletask/links/"))
        assert parse_qs(urlsplit(url).query)["code"]
        assert call(url, key=False).status in (200, 202)
        assert call(root.url("/v1.0/workflows/dapr/g1/purge"), "POST", key=False).status == 202
    finally:
        root.stop()
