"""The management API in Durable Functions' shape, over HTTP on the local host, on Azurite.

One host (tests/apps/management_app, function keys required) serves the whole module; each
test makes its own instances. The last tests run schemathesis against the served OpenAPI
document: no input it generates may get a 5xx (SCHEMATHESIS_EXAMPLES=300 for a longer run
than the default 25 examples per operation).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest

from tests.conftest import (
    APPS,
    TEST_FUNCTION_KEY,
    HostProcess,
    Storage,
    launch_host,
    unique,
    wait_until,
)

KEY = {"x-functions-key": TEST_FUNCTION_KEY}


@pytest.fixture(scope="module")
def host(azurite: Storage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    hub = "Mgmt" + unique("h").replace("-", "")[:16]
    log = tmp_path_factory.mktemp("mgmt") / "host.log"
    env = {"DURABLE_TEST_HUB": hub}
    process = launch_host(APPS / "management_app", azurite.connection_string, log, env)
    yield process
    process.stop()


class Reply:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status = status
        self.raw = body
        self.headers = headers

    @property
    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else None


def call(
    url: str,
    method: str = "GET",
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    key: bool = True,
) -> Reply:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    all_headers = {**(KEY if key else {}), **(headers or {})}
    if data is not None:
        all_headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read(), dict(error.headers))


def api(host: HostProcess, path: str, **params: str) -> str:
    query = f"?{urlencode(params)}" if params else ""
    return host.url(f"/api/{path}{query}")


def instance(host: HostProcess, instance_id: str, suffix: str = "", **params: str) -> str:
    return api(host, f"durabletask/instances/{quote(instance_id, safe='')}{suffix}", **params)


def start(host: HostProcess, name: str, payload: Any = None, instance_id: str = "") -> str:
    path = f"orchestrators/{name}" + (f"/{quote(instance_id, safe='')}" if instance_id else "")
    reply = call(api(host, path), "POST", payload)
    assert reply.status == 202, reply.raw
    return str(reply.json["id"])


def status_of(host: HostProcess, instance_id: str, **params: str) -> dict[str, Any]:
    reply = call(instance(host, instance_id, **params))
    assert reply.status in (200, 202), reply.raw
    result: dict[str, Any] = reply.json
    return result


def wait_status(host: HostProcess, instance_id: str, *statuses: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        status = status_of(host, instance_id)
        return status if status["runtimeStatus"] in statuses else None

    result: dict[str, Any] = wait_until(reached, 60, 0.1, f"{instance_id} to be {statuses}")
    return result


# -- start and the check-status payload ---------------------------------------------------------


def test_start_answers_202_with_check_status_urls_that_carry_the_key(host: HostProcess) -> None:
    reply = call(api(host, "orchestrators/echo"), "POST", {"n": 1})
    assert reply.status == 202
    payload = reply.json
    instance_id = payload["id"]
    assert reply.headers["Location"] == payload["statusQueryGetUri"]
    for name in (
        "statusQueryGetUri",
        "sendEventPostUri",
        "terminatePostUri",
        "rewindPostUri",
        "purgeHistoryDeleteUri",
        "restartPostUri",
        "suspendPostUri",
        "resumePostUri",
    ):
        url = payload[name]
        assert f"/api/durabletask/instances/{instance_id}" in url
        assert parse_qs(urlsplit(url).query)["code"] == [TEST_FUNCTION_KEY]

    def done() -> Any:
        got = call(payload["statusQueryGetUri"], key=False)
        return got if got.status == 200 else None

    final = wait_until(done, 60, message="echo to finish").json
    assert final["runtimeStatus"] == "Completed"
    assert final["output"] == {"n": 1} and final["input"] == {"n": 1}
    assert final["name"] == "echo" and final["instanceId"] == instance_id


def test_an_anonymous_starter_hands_out_links_that_open_its_instance_only(
    host: HostProcess,
) -> None:
    """A request without a key gets link URLs: each opens its own instance (status, events,
    lifecycle, restart, purge) and nothing else; listing needs a real key."""
    reply = call(host.url("/api/anon_start/wait_event"), "POST", key=False)
    assert reply.status == 202
    payload = reply.json
    instance_id = payload["id"]
    for name in ("statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "restartPostUri"):
        url = payload[name]
        assert f"/api/durabletask/links/{instance_id}" in url
        assert parse_qs(urlsplit(url).query)["code"] != [TEST_FUNCTION_KEY]
    assert reply.headers["Location"] == payload["statusQueryGetUri"]
    wait_until(
        lambda: call(payload["statusQueryGetUri"], key=False).json["runtimeStatus"] == "Running",
        30,
        message="the instance to run",
    )
    other = call(host.url("/api/anon_start/wait_event"), "POST", key=False).json
    code = parse_qs(urlsplit(payload["statusQueryGetUri"]).query)["code"][0]
    # The code opens neither another instance nor the key-protected API.
    assert call(api(host, f"durabletask/links/{other['id']}", code=code), key=False).status == 401
    assert (
        call(api(host, f"durabletask/instances/{instance_id}", code=code), key=False).status == 401
    )
    assert call(api(host, "durabletask/instances", code=code), key=False).status == 401
    assert call(api(host, f"durabletask/links/{instance_id}"), key=False).status == 401
    # Events and lifecycle through the links.
    event_url = payload["sendEventPostUri"].replace("{eventName}", "Go")
    assert call(event_url, "POST", {"ok": 1}, key=False).status == 202

    def finished() -> Any:
        got = call(payload["statusQueryGetUri"], key=False)
        return got.json if got.status == 200 else None

    assert wait_until(finished, 60, message="wait_event to finish")["output"] == {"got": {"ok": 1}}
    restarted = call(payload["restartPostUri"], "POST", key=False)
    assert restarted.status == 202
    new_id = restarted.json["id"]
    assert new_id != instance_id
    assert f"/api/durabletask/links/{new_id}" in restarted.json["statusQueryGetUri"]
    assert call(restarted.json["statusQueryGetUri"], key=False).status in (200, 202)
    terminate = restarted.json["terminatePostUri"].replace("{text}", "done")
    assert call(terminate, "POST", key=False).status == 202
    purge = call(payload["purgeHistoryDeleteUri"], "DELETE", key=False)
    assert purge.status == 200 and purge.json == {"instancesDeleted": 1}
    assert call(payload["statusQueryGetUri"], key=False).status == 404
    assert call(other["terminatePostUri"].replace("{text}", "x"), "POST", key=False).status == 202


def test_start_with_a_chosen_id_and_its_conflicts(host: HostProcess) -> None:
    instance_id = unique("chosen/id #1")
    assert start(host, "wait_event", None, instance_id) == instance_id
    wait_status(host, instance_id, "Running")
    again = call(api(host, f"orchestrators/wait_event/{quote(instance_id, safe='')}"), "POST")
    assert again.status == 409
    assert again.json["error"] == "Instance already exists"


def test_start_refuses_bad_input_with_a_json_error(host: HostProcess) -> None:
    unknown = call(api(host, "orchestrators/no_such_thing"), "POST")
    assert unknown.status == 400
    assert "echo" in unknown.json["detail"] and "wait_event" in unknown.json["detail"]
    bad_json = call(api(host, "orchestrators/echo"), "POST", raw=b"{not json")
    assert bad_json.status == 400 and bad_json.json["error"] == "Malformed JSON"
    too_big = call(api(host, "orchestrators/echo"), "POST", "x" * 70_000)
    assert too_big.status == 413 and "65536" in too_big.json["detail"]
    bad_id = call(api(host, "orchestrators/echo/" + "x" * 300), "POST")
    assert bad_id.status == 400 and "256" in bad_id.json["detail"]
    control = call(api(host, "orchestrators/echo/a%01b"), "POST")
    assert control.status == 400 and "control" in control.json["detail"]
    bad_name = call(api(host, "orchestrators/no%20such"), "POST")
    assert bad_name.status == 400
    bad_timeout = call(api(host, "orchestrators/echo", timeout="soon"), "POST")
    assert bad_timeout.status == 400 and "timeout" in bad_timeout.json["detail"]


def test_start_can_wait_for_the_output(host: HostProcess) -> None:
    reply = call(api(host, "orchestrators/echo", timeout="20", pollingInterval="0.2"), "POST", 7)
    assert reply.status == 200 and reply.json == 7


# -- keys ---------------------------------------------------------------------------------------


def test_management_endpoints_require_a_function_key(host: HostProcess) -> None:
    instance_id = start(host, "wait_event")
    urls = [
        ("GET", instance(host, instance_id)),
        ("GET", api(host, "durabletask/instances")),
        ("DELETE", instance(host, instance_id)),
        ("POST", instance(host, instance_id, "/raiseEvent/Go")),
        ("POST", instance(host, instance_id, "/terminate")),
        ("POST", api(host, "orchestrators/echo")),
        ("GET", api(host, "durabletask/openapi.json")),
        ("GET", api(host, f"v1.0/workflows/dapr/{instance_id}")),
    ]
    for method, url in urls:
        assert call(url, method, key=False).status == 401, url
        assert call(url, method, headers={"x-functions-key": "wrong"}, key=False).status == 401
    with_code = call(instance(host, instance_id, code=TEST_FUNCTION_KEY), key=False)
    assert with_code.status == 202


# -- status -------------------------------------------------------------------------------------


def test_status_with_history_input_and_output_flags(host: HostProcess) -> None:
    instance_id = start(host, "echo", {"word": "hi"})
    wait_status(host, instance_id, "Completed")
    plain = status_of(host, instance_id)
    assert "historyEvents" not in plain
    assert set(plain) >= {
        "name",
        "instanceId",
        "runtimeStatus",
        "input",
        "customStatus",
        "output",
        "createdTime",
        "lastUpdatedTime",
    }
    hidden = status_of(host, instance_id, showInput="false")
    assert hidden["input"] is None
    history = status_of(host, instance_id, showHistory="true")["historyEvents"]
    kinds = [event["EventType"] for event in history]
    assert "ExecutionStarted" in kinds[:2] and "TaskScheduled" in kinds
    assert "TaskCompleted" in kinds and kinds[-1] == "ExecutionCompleted"
    assert all("Result" not in event for event in history)
    with_output = status_of(host, instance_id, showHistory="true", showHistoryOutput="true")
    completed = [e for e in with_output["historyEvents"] if e["EventType"] == "TaskCompleted"]
    assert completed[0]["Result"] == {"word": "hi"}


def test_status_codes_202_running_404_unknown_400_bad_flag_500_on_request(
    host: HostProcess,
) -> None:
    running = start(host, "wait_event")
    reply = call(instance(host, running))
    assert reply.status == 202 and reply.headers.get("Location")
    assert reply.json["customStatus"] in (None, "waiting")
    missing = call(instance(host, unique("missing")))
    assert missing.status == 404 and missing.json["error"] == "Instance not found"
    bad = call(instance(host, running, showHistory="maybe"))
    assert bad.status == 400 and "showHistory" in bad.json["detail"]
    failed = start(host, "fail_once")
    wait_status(host, failed, "Failed")
    assert call(instance(host, failed)).status == 200
    assert call(instance(host, failed, returnInternalServerErrorOnFailure="true")).status == 500


# -- query --------------------------------------------------------------------------------------


def test_query_filters_by_prefix_status_and_time_and_pages_with_continuation(
    host: HostProcess,
) -> None:
    prefix = unique("page")
    before = datetime.now(UTC) - timedelta(seconds=1)
    ids = [start(host, "wait_event", None, f"{prefix}-{i:02d}") for i in range(7)]
    for instance_id in ids:
        wait_status(host, instance_id, "Running")
    everything = call(api(host, "durabletask/instances", instanceIdPrefix=prefix))
    assert everything.status == 200
    assert sorted(s["instanceId"] for s in everything.json) == ids
    assert "x-ms-continuation-token" not in {k.lower() for k in everything.headers}

    seen: list[str] = []
    token = None
    pages = 0
    while True:
        headers = {"x-ms-continuation-token": token} if token else {}
        page = call(
            api(host, "durabletask/instances", instanceIdPrefix=prefix, top="3"), headers=headers
        )
        assert page.status == 200 and len(page.json) <= 3
        seen += [s["instanceId"] for s in page.json]
        pages += 1
        token = {k.lower(): v for k, v in page.headers.items()}.get("x-ms-continuation-token")
        if not token:
            break
    assert sorted(seen) == ids and pages >= 3

    call(instance(host, ids[0], "/terminate"), "POST")
    wait_status(host, ids[0], "Terminated")
    terminated = call(
        api(host, "durabletask/instances", instanceIdPrefix=prefix, runtimeStatus="Terminated")
    )
    assert [s["instanceId"] for s in terminated.json] == [ids[0]]
    both = call(
        api(
            host,
            "durabletask/instances",
            instanceIdPrefix=prefix,
            runtimeStatus="terminated,Running",
        )
    )
    assert len(both.json) == 7
    window = call(
        api(
            host,
            "durabletask/instances",
            instanceIdPrefix=prefix,
            createdTimeFrom=before.isoformat(),
            createdTimeTo=(datetime.now(UTC) + timedelta(minutes=1)).isoformat(),
            showInput="false",
        )
    )
    assert len(window.json) == 7
    future = call(
        api(
            host,
            "durabletask/instances",
            instanceIdPrefix=prefix,
            createdTimeFrom="2999-01-01T00:00:00Z",
        )
    )
    assert future.status == 200 and future.json == []


def test_query_refuses_bad_parameters(host: HostProcess) -> None:
    cases = {
        "createdTimeFrom": "yesterday",
        "createdTimeTo": "2024-13-45",
        "runtimeStatus": "Running,Sleeping",
        "top": "0",
        "showInput": "perhaps",
    }
    for name, value in cases.items():
        reply = call(api(host, "durabletask/instances", **{name: value}))
        assert reply.status == 400, (name, reply.raw)
        assert name in reply.json["detail"]
    assert call(api(host, "durabletask/instances", top="5000")).status == 400
    bad_token = call(
        api(host, "durabletask/instances"), headers={"x-ms-continuation-token": "not-a-token"}
    )
    assert bad_token.status == 400 and bad_token.json["error"] == "Invalid continuation token"


def test_query_parameters_cannot_inject_odata(host: HostProcess) -> None:
    prefix = unique("odata")
    start(host, "wait_event", None, f"{prefix}-a")
    injections = [
        "' or RowKey ne '",
        "x' or PartitionKey ne 'x",
        "') or (RowKey ne '",
        f"{prefix}' or '1' eq '1",
        "%27 or true",
    ]
    for attempt in injections:
        reply = call(api(host, "durabletask/instances", instanceIdPrefix=attempt))
        assert reply.status == 200, reply.raw
        assert reply.json == [], attempt
    quoted = call(api(host, "durabletask/instances", instanceIdPrefix=f"{prefix}-a'"))
    assert quoted.status == 200 and quoted.json == []
    status_injection = call(
        api(host, "durabletask/instances", runtimeStatus="Running' or RuntimeStatus ne 'x")
    )
    assert status_injection.status == 400
    for edge in ("x~", "\u00ff\ud7ff", "\uffff", "%", "a/b#c?d\\e"):
        assert call(api(host, "durabletask/instances", instanceIdPrefix=edge)).status == 200
    control = call(api(host, "durabletask/instances", instanceIdPrefix="a\x01"))
    assert control.status == 400


# -- raise event and steering ----------------------------------------------------------------------


def test_raise_event_completes_a_waiting_instance_and_is_gone_after(host: HostProcess) -> None:
    instance_id = start(host, "wait_event")
    wait_status(host, instance_id, "Running")
    reply = call(instance(host, instance_id, "/raiseEvent/Go"), "POST", {"approved": True})
    assert reply.status == 202
    final = wait_status(host, instance_id, "Completed")
    assert final["output"] == {"got": {"approved": True}}
    assert call(instance(host, instance_id, "/raiseEvent/Go"), "POST", 1).status == 410
    assert call(instance(host, unique("nobody"), "/raiseEvent/Go"), "POST", 1).status == 404
    bad_body = call(instance(host, instance_id, "/raiseEvent/Go"), "POST", raw=b"{")
    assert bad_body.status == 400
    bad_name = call(instance(host, instance_id, "/raiseEvent/" + "e" * 300), "POST", 1)
    assert bad_name.status == 400 and "Event name" in bad_name.json["detail"]


def test_suspend_resume_and_terminate(host: HostProcess) -> None:
    instance_id = start(host, "wait_event")
    wait_status(host, instance_id, "Running")
    assert call(instance(host, instance_id, "/suspend", reason="look"), "POST").status == 202
    wait_status(host, instance_id, "Suspended")
    assert call(instance(host, instance_id, "/resume"), "POST").status == 202
    wait_status(host, instance_id, "Running")
    assert call(instance(host, instance_id, "/terminate", reason="done"), "POST").status == 202
    final = wait_status(host, instance_id, "Terminated")
    assert final["output"] == "done"
    for verb in ("terminate", "suspend", "resume"):
        gone = call(instance(host, instance_id, f"/{verb}"), "POST")
        assert gone.status == 410 and "Terminated" in gone.json["detail"]
        assert call(instance(host, unique("nobody"), f"/{verb}"), "POST").status == 404


def strict_json(raw: bytes) -> Any:
    """Parse as a strict client would: no NaN/Infinity, no lone surrogates."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} in the answer")

    value = json.loads(raw.decode("utf-8"), parse_constant=refuse)
    json.dumps(value, allow_nan=False).encode("utf-8")
    return value


NOT_STRICT_JSON = [b"1e99999", b"[NaN]", b'{"x": -Infinity}', b'"\\ud800"', b'["\\udfff"]']


@pytest.mark.parametrize("body", NOT_STRICT_JSON)
def test_values_that_are_not_strict_json_are_refused_at_every_http_door(
    host: HostProcess, body: bytes
) -> None:
    waiting = start(host, "wait_event")
    doors = [
        api(host, "orchestrators/echo"),
        instance(host, waiting, "/raiseEvent/Go"),
        api(host, "v1.0/workflows/dapr/echo/start"),
        api(host, f"v1.0/workflows/dapr/{quote(waiting, safe='')}/raiseEvent/Go"),
    ]
    for url in doors:
        reply = call(url, "POST", raw=body)
        assert reply.status == 400, (url, reply.raw)
        assert reply.json["error"] == "Invalid JSON value", reply.json
    page = call(api(host, "durabletask/instances", top="1000"))
    assert page.status == 200
    strict_json(page.raw)


def test_bad_ids_and_tokens_get_a_json_4xx_never_a_5xx(host: HostProcess) -> None:
    surrogate_token = base64.urlsafe_b64encode(b'["\\ud800", null]').decode().rstrip("=")
    cases = [
        (instance(host, "a\nb"), {}),
        (api(host, "durabletask/instances/a%0Ab"), {}),
        (api(host, "durabletask/instances"), {"x-ms-continuation-token": surrogate_token}),
    ]
    for url, headers in cases:
        reply = call(url, headers=headers)
        assert reply.status == 400, (url, reply.raw)
        assert reply.headers["Content-Type"].startswith("application/json")
        assert reply.json["error"]
    collide = call(api(host, "durabletask/instances/%FF%FE"))
    assert collide.status == 400 and collide.json["error"] == "Invalid URL"


def test_suspending_twice_then_resuming_once_resumes(host: HostProcess) -> None:
    instance_id = start(host, "wait_event")
    wait_status(host, instance_id, "Running")
    assert call(instance(host, instance_id, "/resume"), "POST").status == 202  # a no-op
    for reason in ("first", "second"):
        assert call(instance(host, instance_id, "/suspend", reason=reason), "POST").status == 202
        wait_status(host, instance_id, "Suspended")
    assert call(instance(host, instance_id, "/resume"), "POST").status == 202
    wait_status(host, instance_id, "Running")
    event = call(instance(host, instance_id, "/raiseEvent/Go"), "POST", 5)
    assert event.status == 202
    assert wait_status(host, instance_id, "Completed")["output"] == {"got": 5}


def test_rewind_retries_a_failed_instance(host: HostProcess) -> None:
    instance_id = start(host, "fail_once")
    failed = wait_status(host, instance_id, "Failed")
    assert "first attempt fails" in str(failed["output"])
    assert call(instance(host, instance_id, "/rewind", reason="retry"), "POST").status == 202
    final = wait_status(host, instance_id, "Completed")
    assert final["output"] == "ok after 2"
    assert call(instance(host, instance_id, "/rewind"), "POST").status == 412
    assert call(instance(host, unique("nobody"), "/rewind"), "POST").status == 404


def test_restart_starts_again_with_the_same_input(host: HostProcess) -> None:
    instance_id = start(host, "echo", ["again"])
    wait_status(host, instance_id, "Completed")
    reply = call(instance(host, instance_id, "/restart"), "POST")
    assert reply.status == 202
    new_id = reply.json["id"]
    assert new_id != instance_id
    assert wait_status(host, new_id, "Completed")["output"] == ["again"]
    same = call(instance(host, instance_id, "/restart", restartWithNewInstanceId="false"), "POST")
    assert same.status == 202 and same.json["id"] == instance_id
    assert wait_status(host, instance_id, "Completed")["output"] == ["again"]
    running = start(host, "wait_event")
    conflict = call(instance(host, running, "/restart", restartWithNewInstanceId="false"), "POST")
    assert conflict.status == 409
    assert call(instance(host, unique("nobody"), "/restart"), "POST").status == 404


# -- purge --------------------------------------------------------------------------------------


def test_purge_one_instance(host: HostProcess) -> None:
    instance_id = start(host, "wait_event")
    wait_status(host, instance_id, "Running")
    assert call(instance(host, instance_id), "DELETE").status == 412
    call(instance(host, instance_id, "/terminate"), "POST")
    wait_status(host, instance_id, "Terminated")
    reply = call(instance(host, instance_id), "DELETE")
    assert reply.status == 200 and reply.json == {"instancesDeleted": 1}
    assert call(instance(host, instance_id)).status == 404
    assert call(instance(host, instance_id), "DELETE").status == 404


def test_purge_by_filter(host: HostProcess) -> None:
    assert call(api(host, "durabletask/instances"), "DELETE").status == 400
    since = datetime.now(UTC) - timedelta(seconds=1)
    ids = [start(host, "echo", i) for i in range(3)]
    for instance_id in ids:
        wait_status(host, instance_id, "Completed")
    running = call(
        api(
            host,
            "durabletask/instances",
            createdTimeFrom=since.isoformat(),
            runtimeStatus="Running",
        ),
        "DELETE",
    )
    assert running.status == 400
    reply = call(
        api(
            host,
            "durabletask/instances",
            createdTimeFrom=since.isoformat(),
            runtimeStatus="Completed",
        ),
        "DELETE",
    )
    assert reply.status == 200 and reply.json["instancesDeleted"] >= 3
    assert all(call(instance(host, i)).status == 404 for i in ids)
    again = call(
        api(
            host,
            "durabletask/instances",
            createdTimeFrom=since.isoformat(),
            runtimeStatus="Completed",
        ),
        "DELETE",
    )
    assert again.status == 404


# -- OpenAPI and schemathesis -------------------------------------------------------------------


def test_the_openapi_document_describes_every_route(host: HostProcess) -> None:
    reply = call(api(host, "durabletask/openapi.json"))
    assert reply.status == 200
    document = reply.json
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": "/api"}]
    paths = set(document["paths"])
    assert "/durabletask/instances/{instanceId}/raiseEvent/{eventName}" in paths
    assert "/v1.0/workflows/dapr/{workflowName}/start" in paths
    assert "/durabletask/links/{instanceId}/raiseEvent/{eventName}" in paths
    assert "/durabletask/entities/{entityName}/{entityKey}" in paths
    assert "/v1.0-alpha1/workflows/dapr/{workflowName}/{instanceId}/start" in paths
    assert "/v1.0-beta1/workflows/dapr/{instanceId}/pause" in paths
    assert "/durabletask/poison/{queue}/{messageId}/requeue" in paths
    # the 7 instance paths again behind link codes, the 7 Dapr paths in two older versions,
    # Dapr 1.10's two alpha forms, and the hub's 5 (overview, registry, poison queues)
    assert len(paths) == 17 + 2 + 7 + 2 * 7 + 2 + 5


EXAMPLES_PER_OPERATION = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))


def test_schemathesis_finds_no_server_error(host: HostProcess) -> None:
    schemathesis = pytest.importorskip("schemathesis")

    # Instances to aim at, besides the random ids schemathesis makes up.
    targets = [start(host, "wait_event", None, f"st-{unique('w')}") for _ in range(3)]
    targets.append(start(host, "fail_once"))
    schema = schemathesis.openapi.from_url(api(host, "durabletask/openapi.json"), headers=KEY)
    base = host.url("/api")
    failures: list[str] = []
    seen: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        check_operation(operation, base, failures, targets, seen)
    assert not failures, "\n".join(failures[:10])
    assert {200, 202, 400, 404} <= set(seen), seen


def failed_on_request(case: Any, response: Any) -> bool:
    """DF's documented 500: a Failed instance's status with returnInternalServerErrorOnFailure."""
    flag = str((case.query or {}).get("returnInternalServerErrorOnFailure", "")).lower()
    try:
        failed = response.json().get("runtimeStatus") == "Failed"
    except ValueError:
        return False
    return response.status_code == 500 and flag in ("true", "1") and failed


def check_operation(
    operation: Any, base: str, failures: list[str], targets: list[str], seen: Counter[int]
) -> None:
    """Call one operation with generated cases (valid, invalid, and aimed at existing
    instances); record every 5xx."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis import GenerationMode

    label = operation.label
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    with contextlib.suppress(Exception):  # an operation with nothing to make invalid
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    if "{instanceId}" in operation.path:
        strategies += [
            operation.as_strategy(path_parameters={"instanceId": target}) for target in targets
        ]

    @given(case=st.one_of(strategies))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        response = case.call(base_url=base, headers=KEY, timeout=30)
        seen[response.status_code] += 1
        if response.status_code >= 500 and not failed_on_request(case, response):
            failures.append(f"{label}: {response.status_code} for {case!r}")

    check()
