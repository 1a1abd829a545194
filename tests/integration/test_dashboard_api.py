"""The dashboard's routes and the management routes it added, on the local host and Azurite:
the page served without data, sign-in with a key only, the session-guarded API running the
same handlers as the keyed one, the hub overview, and poison messages requeued and discarded.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient

from tests.conftest import TEST_MASTER_KEY, Storage, wait_until
from tests.integration.test_workflows import KEY, Workflows, http, on_own_hub, poll

pytestmark = pytest.mark.integration

PAGE = "/api/durabletask/dashboard/"
SESSION = "/api/durabletask/dashboard-session"
API = "/api/durabletask/dashboard-api/"


class Dashboard(Workflows):
    def session(self) -> dict[str, str]:
        reply = http("POST", self.url(SESSION), headers=KEY)
        assert reply.status == 200, reply.body
        return {"x-dashboard-session": reply.json()["token"]}

    def queue(self, name: str) -> QueueClient:
        client = QueueClient.from_connection_string(self.connection_string, name)
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        return client

    def poison(self) -> dict[str, Any]:
        reply = http("GET", self.url("/api/durabletask/poison"))
        assert reply.status == 200, reply.body
        return {q["queue"]: q for q in reply.json()["queues"]}


@pytest.fixture(scope="module")
def dashboard(azurite: Storage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    with on_own_hub(azurite, tmp_path_factory, "Db", Dashboard) as running:
        yield running


def test_the_page_is_served_without_a_key_and_holds_no_data(dashboard: Dashboard) -> None:
    reply = http("GET", dashboard.url(PAGE), headers={})
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    policy = reply.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert TEST_MASTER_KEY.encode() not in reply.body and b"functionKeys" not in reply.body
    script = http("GET", dashboard.url(PAGE + "app.js"), headers={})
    assert script.status == 200 and script.headers["Content-Type"].startswith("text/javascript")
    assert http("GET", dashboard.url(PAGE + "missing.js"), headers={}).status == 404
    assert http("GET", dashboard.url(PAGE + "..%2F..%2Fhost.json"), headers={}).status == 404
    bare = http("GET", dashboard.url(PAGE.rstrip("/")), headers={})
    assert bare.status == 200  # urllib follows the 308 to the trailing slash
    # The host's banner names the page a person opens.
    assert f"Dashboard: http://127.0.0.1:{dashboard.host.port}{PAGE}" in dashboard.host.log()


def test_a_session_takes_a_key_in_a_header_and_nothing_else(dashboard: Dashboard) -> None:
    assert http("POST", dashboard.url(SESSION), headers={}).status == 401
    assert http("POST", dashboard.url(SESSION), headers={"x-functions-key": "wrong"}).status == 401
    in_url = http("POST", dashboard.url(f"{SESSION}?code={KEY['x-functions-key']}"), headers={})
    assert in_url.status == 400 and "header" in in_url.json()["detail"]
    reply = http("POST", dashboard.url(SESSION), headers=KEY)
    assert reply.status == 200 and reply.headers["Cache-Control"] == "no-store"
    body = reply.json()
    assert set(body) == {"token", "expiresAt"}
    assert KEY["x-functions-key"] not in body["token"]
    # The key never reaches the host's log.
    assert KEY["x-functions-key"] not in dashboard.host.log()


def test_the_api_refuses_a_request_without_a_valid_session(dashboard: Dashboard) -> None:
    url = dashboard.url(API + "durabletask/instances")
    for headers in (
        {},
        KEY,  # a key is for the management API itself, not for this door
        {"x-dashboard-session": "forged.token"},
        {"x-dashboard-session": dashboard.session()["x-dashboard-session"] + "x"},
    ):
        reply = http("GET", url, headers=headers)
        assert reply.status == 401, headers
        assert reply.json()["error"] == "Unauthorized"
    assert http("GET", dashboard.url(API + "durabletask/hub"), headers={}).status == 401


def test_the_api_runs_the_management_handlers(dashboard: Dashboard) -> None:
    session = dashboard.session()
    instance_id = f"dash-{uuid.uuid4().hex[:8]}"
    started = http(
        "POST", dashboard.url(f"{API}orchestrators/hello_sequence/{instance_id}"), {}, session
    )
    assert started.status == 202, started.body
    links = started.json()
    assert links["id"] == instance_id
    # Its URLs point at the management API (with link codes: the session is not a key).
    assert "/dashboard-api/" not in links["statusQueryGetUri"]
    poll(links["statusQueryGetUri"])
    path = f"durabletask/instances/{quote(instance_id)}"
    through_session = http("GET", dashboard.url(API + path), headers=session)
    through_key = http("GET", dashboard.url(f"/api/{path}"))
    assert through_session.status == through_key.status == 200
    assert through_session.json() == through_key.json()
    assert through_session.headers["Cache-Control"] == "no-store"
    listed = http(
        "GET", dashboard.url(API + "durabletask/instances?name=hello_sequence"), headers=session
    )
    assert instance_id in [i["instanceId"] for i in listed.json()]
    other = http(
        "GET", dashboard.url(API + "durabletask/instances?name=word_count"), headers=session
    )
    assert instance_id not in [i["instanceId"] for i in other.json()]
    assert http("GET", dashboard.url(API + "durabletask/nothing"), headers=session).status == 404
    wrong = http("DELETE", dashboard.url(API + "durabletask/hub"), headers=session)
    assert wrong.status == 405
    purged = http("DELETE", dashboard.url(API + path), headers=session)
    assert purged.status == 200 and purged.json() == {"instancesDeleted": 1}
    assert http("GET", dashboard.url(f"/api/{path}")).status == 404


def test_the_hub_overview_counts_and_lists_recent_failures(dashboard: Dashboard) -> None:
    failing = dashboard.run("retry_with_backoff", {"failures": 9, "max_attempts": 2})
    assert failing.status["runtimeStatus"] == "Failed"
    details = failing.status["failureDetails"]
    assert details["errorType"] == "TaskFailedError" and "flaky_operation" in details["message"]
    assert "Traceback" in details["stackTrace"]
    dashboard.run("hello_sequence")
    # An entity's row is not an orchestration: the overview counts what the list shows.
    signal = http("POST", dashboard.url("/api/durabletask/entities/inventory/lamp?op=restock"), 3)
    assert signal.status == 202, signal.body
    wait_until(
        lambda: (
            http("GET", dashboard.url("/api/durabletask/entities/inventory/lamp")).status == 200
        ),
        timeout=30,
        message="the entity to exist",
    )
    time.sleep(2.1)  # past the overview's shared answer
    reply = http("GET", dashboard.url("/api/durabletask/hub"))
    assert reply.status == 200
    overview = reply.json()
    assert overview["taskHub"] == dashboard.names.hub
    assert overview["instances"]["Failed"] >= 1 and overview["instances"]["Completed"] >= 1
    assert overview["totalInstances"] == sum(overview["instances"].values())
    assert overview["countsComplete"] is True
    listed = http("GET", dashboard.url("/api/durabletask/instances?top=1000&showInput=false"))
    assert overview["totalInstances"] == len(listed.json())
    assert [q["name"] for q in overview["queues"]] == [
        dashboard.names.control_queue,
        dashboard.names.work_item_queue,
        dashboard.names.starts_queue,
    ]
    failed_id = failing.status["instanceId"]
    assert failed_id in [f["instanceId"] for f in overview["recentFailures"]]
    assert "hello_sequence" in overview["orchestrators"]
    registry = http("GET", dashboard.url("/api/durabletask/registry")).json()
    assert (
        "flaky_operation" in registry["activities"]
        and "approval_workflow" in registry["orchestrators"]
    )
    assert http("GET", dashboard.url("/api/durabletask/hub"), headers={}).status == 401


def test_a_poisoned_message_is_listed_with_its_reason_and_discarded(dashboard: Dashboard) -> None:
    control = dashboard.names.control_queue
    dashboard.queue(control).send_message(base64.b64encode(b"not an engine message").decode())

    def listed() -> list[dict[str, Any]]:
        return list(dashboard.poison()[control]["listed"])

    messages = wait_until(listed, timeout=60, message="the message on the poison queue")
    message = messages[0]
    assert message["body"] == "not an engine message"
    assert "JSON" in message["reason"]
    path = f"/api/durabletask/poison/{control}/{message['id']}"
    whole = http("GET", dashboard.url(path))
    assert whole.status == 200 and whole.json()["body"] == "not an engine message"
    assert http("DELETE", dashboard.url(path), headers={}).status == 401
    discarded = http("DELETE", dashboard.url(path))
    assert discarded.status == 200 and discarded.json()["discarded"] is True
    assert not listed()
    assert http("DELETE", dashboard.url(path)).status == 404
    assert http("GET", dashboard.url("/api/durabletask/poison/not-ours/x")).status == 404


def test_a_requeued_message_runs_again(dashboard: Dashboard) -> None:
    starts = dashboard.names.starts_queue
    instance_id = f"requeued-{uuid.uuid4().hex[:8]}"
    start = json.dumps({"name": "hello_sequence", "instanceId": instance_id, "input": None})
    envelope = {"reason": "a test put it here", "body": start}
    dashboard.queue(f"{starts}-poison").send_message(json.dumps(envelope))
    queue = dashboard.poison()[starts]
    assert queue["messages"] >= 1
    (message,) = [m for m in queue["listed"] if instance_id in m["body"]]
    assert message["reason"] == "a test put it here"
    session = dashboard.session()
    requeued = http(
        "POST",
        dashboard.url(f"{API}durabletask/poison/{starts}/{message['id']}/requeue"),
        headers=session,
    )
    assert requeued.status == 200, requeued.body
    assert requeued.json()["requeued"] is True
    deadline = time.monotonic() + 60
    while (
        status := http("GET", dashboard.url(f"/api/durabletask/instances/{instance_id}"))
    ).status in (404, 202):
        assert time.monotonic() < deadline, "the requeued start never ran"
        time.sleep(0.2)
    assert status.json()["runtimeStatus"] == "Completed"
    assert instance_id not in json.dumps(dashboard.poison()[starts]["listed"])
