"""The local Functions host against a real Azurite, over real HTTP, as separate processes."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient

from orchestration.host.azurite import connection_string, free_port, is_listening
from tests.conftest import (
    APPS,
    TEST_FUNCTION_KEY,
    TEST_MASTER_KEY,
    HostLauncher,
    Storage,
    launch_host,
    unique,
    wait_until,
)

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    method: str, url: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
) -> Reply:
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as err:
        return Reply(err.code, dict(err.headers), err.read())


def queue(storage: Storage, name: str) -> QueueClient:
    return QueueClient.from_connection_string(storage.connection_string, name)


def send(storage: Storage, name: str, body: str) -> None:
    client = queue(storage, name)
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()
    client.send_message(base64.b64encode(body.encode()).decode())


def drain(storage: Storage, name: str, into: list[Any]) -> list[Any]:
    """Receive, decode (base64 JSON) and delete what is in the queue; append it to `into`."""
    client = queue(storage, name)
    try:
        for message in client.receive_messages(messages_per_page=32, visibility_timeout=30):
            into.append(json.loads(base64.b64decode(message.content)))
            client.delete_message(message)
    except Exception as err:
        if "QueueNotFound" not in str(err):
            raise
    return into


def count(storage: Storage, name: str) -> int:
    try:
        return int(queue(storage, name).get_queue_properties().approximate_message_count)
    except Exception:
        return 0


# HTTP


@pytest.fixture(scope="module")
def http_host(azurite: Storage, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One http_app host for the module's HTTP tests (they do not change its state)."""
    out_queue = unique("http-out")
    log = tmp_path_factory.mktemp("http-host") / "host.log"
    host = launch_host(APPS / "http_app", azurite.connection_string, log, {"OUT_QUEUE": out_queue})
    host.env = {**host.env, "OUT_QUEUE": out_queue}
    yield host
    host.stop()


def test_route_with_int_constraint_passes_route_params(http_host: Any) -> None:
    reply = http("GET", http_host.url("/api/items/42?x=1"))
    assert reply.status == 200
    assert reply.json()["function"] == "item_by_id"
    assert reply.json()["route_params"] == {"id": "42"}
    assert reply.json()["params"] == {"x": "1"}


def test_alpha_constraint_and_literal_route_take_precedence_by_segment(http_host: Any) -> None:
    assert http("GET", http_host.url("/api/items/abc")).json()["function"] == "item_by_name"
    assert http("GET", http_host.url("/api/items/new")).json()["function"] == "item_new"
    assert http("GET", http_host.url("/api/items/a1")).status == 404


def test_guid_and_bool_constraints(http_host: Any) -> None:
    guid = str(uuid.uuid4())
    reply = http("POST", http_host.url(f"/api/things/{guid}/true"))
    assert reply.json()["route_params"] == {"id": guid, "flag": "true"}
    assert http("GET", http_host.url("/api/things/not-a-guid/true")).status == 404
    assert http("GET", http_host.url(f"/api/things/{guid}/maybe")).status == 404


def test_optional_and_catch_all_parameters(http_host: Any) -> None:
    assert http("GET", http_host.url("/api/maybe")).json()["route_params"] == {}
    assert http("GET", http_host.url("/api/maybe/x")).json()["route_params"] == {"x": "x"}
    reply = http("GET", http_host.url("/api/files/a/b/c.txt"))
    assert reply.json()["route_params"] == {"path": "a/b/c.txt"}


def test_unknown_route_is_404(http_host: Any) -> None:
    assert http("GET", http_host.url("/api/nothing-here")).status == 404
    assert http("GET", http_host.url("/other/items/1")).status == 404


def test_method_not_accepted_is_404_as_on_the_functions_host(http_host: Any) -> None:
    # The real host answers 404, not 405 (Azure/azure-functions-host#10098).
    assert http("GET", http_host.url("/api/only-post")).status == 404
    reply = http("POST", http_host.url("/api/only-post"), b"\x00\x01")
    assert (reply.status, reply.body) == (201, b"\x00\x01")


def test_function_auth_level_needs_a_function_or_master_key(http_host: Any) -> None:
    assert http("GET", http_host.url("/api/secret")).status == 401
    assert http("GET", http_host.url("/api/secret?code=wrong")).status == 401
    assert http("GET", http_host.url(f"/api/secret?code={TEST_FUNCTION_KEY}")).status == 200
    headers = {"x-functions-key": TEST_FUNCTION_KEY}
    assert http("GET", http_host.url("/api/secret"), headers=headers).status == 200
    assert http("GET", http_host.url(f"/api/secret?code={TEST_MASTER_KEY}")).status == 200


def test_admin_auth_level_needs_the_master_key(http_host: Any) -> None:
    assert http("GET", http_host.url(f"/api/manage?code={TEST_FUNCTION_KEY}")).status == 401
    reply = http("GET", http_host.url("/api/manage"), headers={"x-functions-key": TEST_MASTER_KEY})
    assert reply.status == 200


def test_http_response_maps_status_headers_mimetype_and_body(http_host: Any) -> None:
    reply = http("GET", http_host.url("/api/custom"))
    assert reply.status == 418
    assert reply.headers["X-Test"] == "yes"
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.body == b"<p>teapot</p>"


def test_failing_function_answers_500_logs_traceback_and_host_survives(http_host: Any) -> None:
    assert http("GET", http_host.url("/api/boom")).status == 500
    log = http_host.wait_for_log("RuntimeError: boom on purpose")
    assert "Traceback" in log
    assert "Executed 'Functions.boom' (Failed" in log
    assert http("GET", http_host.url("/api/items/1")).status == 200


def test_async_function_gets_context_while_sync_function_blocks_a_thread(http_host: Any) -> None:
    slow: dict[str, Reply] = {}
    thread = threading.Thread(
        target=lambda: slow.update(r=http("GET", http_host.url("/api/slow-sync?seconds=3")))
    )
    thread.start()
    try:
        http_host.wait_for_log("slow-sync started")
        reply = http("GET", http_host.url("/api/async-hello"))
        assert reply.status == 200
        assert reply.json()["invocation_id"]
        assert "r" not in slow, "the async function should not wait for the blocked sync one"
    finally:
        thread.join()
    assert slow["r"].body == b"slept"


def test_invocation_log_line_names_function_id_duration_and_outcome(http_host: Any) -> None:
    http("GET", http_host.url("/api/items/7"))
    log = http_host.wait_for_log("Executed 'Functions.item_by_id' (Succeeded, Id=")
    assert "Duration=" in log


def test_queue_output_is_enqueued_after_success(http_host: Any, azurite: Storage) -> None:
    reply = http("POST", http_host.url("/api/enqueue"), json.dumps({"n": 1}).encode())
    assert reply.status == 202
    received: list[Any] = []
    wait_until(lambda: drain(azurite, http_host.env["OUT_QUEUE"], received), 10)
    assert received == [{"n": 1}]


def test_admin_host_status_requires_master_key(http_host: Any) -> None:
    assert http("GET", http_host.url("/admin/host/status")).status == 401
    reply = http("GET", http_host.url(f"/admin/host/status?code={TEST_MASTER_KEY}"))
    assert reply.json()["state"] == "Running"


def test_function_timeout_fails_the_invocation(start_host: HostLauncher) -> None:
    host = start_host(APPS / "timeout_app")
    assert http("GET", host.url("/api/hang-async")).status == 500
    assert http("GET", host.url("/api/hang-sync")).status == 500
    log = host.wait_for_log("Timeout value of 00:00:01 exceeded by function 'Functions.hang_sync'")
    assert "Timeout value of 00:00:01 exceeded by function 'Functions.hang_async'" in log
    assert http("GET", host.url("/api/quick")).body == b"quick"


# Start-up refusals


def test_unsupported_binding_stops_startup_naming_function_and_type(
    start_host: HostLauncher,
) -> None:
    host = start_host(APPS / "bad_binding_app", wait=False)
    assert host.wait_exit() == 1
    log = host.log()
    assert "function 'send_order'" in log
    assert "binding 'message' of type 'serviceBus' is not supported" in log


def test_admin_route_is_refused_at_startup(start_host: HostLauncher) -> None:
    host = start_host(APPS / "admin_route_app", wait=False)
    assert host.wait_exit() == 1
    assert "function 'reset'" in host.log()
    assert "conflicts with one or more built in routes" in host.log()


def test_extension_adds_a_binding_type(start_host: HostLauncher) -> None:
    host = start_host(APPS / "ext_app", extra_args=("--extension", "greeting_ext:register"))
    assert http("GET", host.url("/api/greet/ann")).body == b"Hi, ann"


def test_custom_binding_without_extension_is_refused(start_host: HostLauncher) -> None:
    host = start_host(APPS / "ext_app", wait=False)
    assert host.wait_exit() == 1
    assert "binding 'greeter' of type 'greeting' is not supported" in host.log()


# Queues


def _queue_env() -> dict[str, str]:
    return {
        "WORK_QUEUE": unique("work"),
        "RESULTS_QUEUE": unique("results"),
        "FAIL_QUEUE": unique("fails"),
        "SLOW_QUEUE": unique("slow"),
    }


def test_queue_trigger_gets_message_metadata(start_host: HostLauncher, azurite: Storage) -> None:
    env = _queue_env()
    start_host(APPS / "queue_app", env)
    send(azurite, env["WORK_QUEUE"], "hello")
    results: list[Any] = []
    wait_until(lambda: drain(azurite, env["RESULTS_QUEUE"], results), 15)
    (result,) = results
    assert result["body"] == "hello"
    assert result["dequeue_count"] == 1
    assert result["id"] and result["inserted"] and result["expires"] and result["has_pop_receipt"]
    wait_until(lambda: count(azurite, env["WORK_QUEUE"]) == 0, 10, message="work queue drained")


def test_failing_message_goes_to_poison_queue_after_max_dequeue_count(
    start_host: HostLauncher, azurite: Storage
) -> None:
    env = _queue_env()
    host = start_host(APPS / "queue_app", env)
    send(azurite, env["FAIL_QUEUE"], "bad")
    poison = env["FAIL_QUEUE"] + "-poison"
    wait_until(lambda: count(azurite, poison) == 1, 20, message="message in poison queue")
    (message,) = queue(azurite, poison).peek_messages()
    assert base64.b64decode(message.content) == b"bad"
    assert count(azurite, env["FAIL_QUEUE"]) == 0
    log = host.log()
    assert log.count("Executed 'Functions.always_fails' (Failed") == 2  # maxDequeueCount
    assert "(attempt 1)" in log and "(attempt 2)" in log
    assert "Moving message to queue" in log


def test_two_hosts_share_a_queue_and_process_each_message_once(
    start_host: HostLauncher, azurite: Storage
) -> None:
    env = _queue_env()
    first = start_host(APPS / "queue_app", env)
    second = start_host(APPS / "queue_app", env)
    total = 60
    for i in range(total):
        send(azurite, env["WORK_QUEUE"], f"m{i}")
    results: list[Any] = []
    wait_until(
        lambda: len(drain(azurite, env["RESULTS_QUEUE"], results)) >= total,
        60,
        message=f"{total} results",
    )
    bodies = sorted(r["body"] for r in results)
    assert bodies == sorted(f"m{i}" for i in range(total))  # each exactly once
    pids = {r["pid"] for r in results}
    assert pids <= {first.process.pid, second.process.pid}


def test_binding_connection_setting_is_honoured(start_host: HostLauncher, azurite: Storage) -> None:
    env = {
        "OtherStorage": azurite.connection_string,
        "AzureWebJobsStorage": "",  # only the bindings' own setting can work
        "IN_QUEUE": unique("in"),
        "OUT_QUEUE": unique("out"),
    }
    start_host(APPS / "connection_app", env, storage="")
    client = queue(azurite, env["IN_QUEUE"])
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()
    client.send_message(base64.b64encode(b'"quiet"').decode())
    results: list[Any] = []
    wait_until(lambda: drain(azurite, env["OUT_QUEUE"], results), 15, message="relayed message")
    assert results == ["QUIET"]


def test_sigterm_lets_running_queue_invocation_finish(
    start_host: HostLauncher, azurite: Storage
) -> None:
    env = _queue_env()
    host = start_host(APPS / "queue_app", env)
    send(azurite, env["SLOW_QUEUE"], "in flight")
    host.wait_for_log("slow_copy started")
    assert host.stop() == 0
    results: list[Any] = []
    drain(azurite, env["RESULTS_QUEUE"], results)
    assert [r["body"] for r in results] == ["in flight"]
    assert count(azurite, env["SLOW_QUEUE"]) == 0, "the finished message is deleted"


def test_sigterm_lets_running_http_request_finish(start_host: HostLauncher) -> None:
    host = start_host(APPS / "http_app", {"OUT_QUEUE": unique("unused")})
    replies: list[Reply] = []
    thread = threading.Thread(
        target=lambda: replies.append(http("GET", host.url("/api/slow-sync?seconds=2")))
    )
    thread.start()
    host.wait_for_log("slow-sync started")
    assert host.stop() == 0
    thread.join()
    assert [(r.status, r.body) for r in replies] == [(200, b"slept")]


# Timers


def _timer_env() -> dict[str, str]:
    return {
        "TICK_SCHEDULE": "*/1 * * * * *",
        "TICKS_QUEUE": unique("ticks"),
        "STARTUP_QUEUE": unique("startup"),
        "AzureFunctionsWebHost__hostid": unique("timerhost"),
    }


def test_timer_fires_every_second_and_run_on_startup_fires_once(
    start_host: HostLauncher, azurite: Storage
) -> None:
    env = _timer_env()
    start_host(APPS / "timer_app", env)
    ticks: list[Any] = []
    wait_until(lambda: len(drain(azurite, env["TICKS_QUEUE"], ticks)) >= 3, 20, message="3 ticks")
    occurrences = [t["next"] for t in ticks]
    assert len(set(occurrences)) == len(occurrences)
    startup: list[Any] = []
    wait_until(lambda: drain(azurite, env["STARTUP_QUEUE"], startup), 10)
    assert startup == [{"past_due": False, "pid": startup[0]["pid"]}]


def test_missed_occurrence_fires_as_past_due_at_start(
    start_host: HostLauncher, azurite: Storage
) -> None:
    env = {**_timer_env(), "TICK_SCHEDULE": "0 0 0 1 1 *"}
    missed = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    status = json.dumps({"Last": None, "Next": missed, "LastUpdated": missed})
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    with contextlib.suppress(ResourceExistsError):
        blobs.create_container("azure-webjobs-hosts")
    status_blob = f"timers/{env['AzureFunctionsWebHost__hostid']}/Host.Functions.tick/status"
    blobs.get_blob_client("azure-webjobs-hosts", status_blob).upload_blob(status, overwrite=True)
    start_host(APPS / "timer_app", env)
    ticks: list[Any] = []
    wait_until(lambda: drain(azurite, env["TICKS_QUEUE"], ticks), 15, message="past-due tick")
    assert ticks[0]["past_due"] is True
    assert ticks[0]["next"] == missed


def test_timer_fires_once_per_occurrence_across_two_hosts(
    start_host: HostLauncher, azurite: Storage
) -> None:
    env = _timer_env()
    start_host(APPS / "timer_app", env)
    start_host(APPS / "timer_app", env)
    ticks: list[Any] = []
    wait_until(lambda: len(drain(azurite, env["TICKS_QUEUE"], ticks)) >= 4, 25, message="4 ticks")
    occurrences = [t["next"] for t in ticks]
    assert len(set(occurrences)) == len(occurrences), f"duplicate firings: {occurrences}"


# Process model and persistence


def test_workers_option_runs_several_processes_serving_one_port(start_host: HostLauncher) -> None:
    host = start_host(APPS / "http_app", {"OUT_QUEUE": unique("w")}, workers=2)
    pids = set()

    def two_pids_seen() -> bool:
        pids.add(http("GET", host.url("/api/items/1")).json()["pid"])
        return len(pids) >= 2

    wait_until(two_pids_seen, 30, interval=0.01, message="replies from two worker processes")
    assert host.process.pid not in pids
    os.kill(pids.pop(), signal.SIGKILL)
    host.wait_for_log("restarting it")
    wait_until(lambda: host.log().count("Host started") == 3, 30, message="replacement worker")
    assert http("GET", host.url("/api/items/1")).status == 200
    assert host.stop() == 0


def test_restart_keeps_storage_data_and_keys(tmp_path: Path, start_host: HostLauncher) -> None:
    """The host starts its own Azurite under <app>/.azurite and a restart finds the data."""
    app = tmp_path / "app"
    shutil.copytree(APPS / "http_app", app)
    ports = (free_port(), free_port(), free_port())
    settings = {
        "IsEncrypted": False,
        "Values": {
            "AzureWebJobsStorage": connection_string("127.0.0.1", *ports),
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "OUT_QUEUE": "kept",
        },
    }
    (app / "local.settings.json").write_text(json.dumps(settings))

    first = start_host(app, storage="", keys=False)
    assert "Started Azurite" in first.log()
    key = json.loads((app / ".host-keys.json").read_text())["functionKeys"]["default"]
    assert http("GET", first.url(f"/api/secret?code={key}")).status == 200
    assert http("POST", first.url("/api/enqueue"), b'{"kept": true}').status == 202
    assert first.stop() == 0
    assert not any(is_listening("127.0.0.1", p) for p in ports), "host should stop its Azurite"

    second = start_host(app, storage="", keys=False)
    assert http("GET", second.url(f"/api/secret?code={key}")).status == 200
    stored = QueueClient.from_connection_string(
        connection_string("127.0.0.1", *ports), "kept"
    ).peek_messages()
    assert [json.loads(base64.b64decode(m.content)) for m in stored] == [{"kept": True}]
    assert second.stop() == 0
    assert (app / ".azurite").is_dir()
    keys = json.loads((app / ".host-keys.json").read_text())
    for host in (first, second):
        assert ".host-keys.json" in host.log()  # where the keys are, never the keys
        assert keys["masterKey"] not in host.log() and key not in host.log()


# Programmatic use


async def test_function_host_runs_in_process(
    azurite: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiohttp import ClientSession

    from orchestration.host import FunctionHost, HostConfig

    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("OUT_QUEUE", unique("inproc"))
    monkeypatch.setenv("FUNCTIONS_MASTER_KEY", TEST_MASTER_KEY)
    monkeypatch.setenv("FUNCTIONS_FUNCTION_KEY", TEST_FUNCTION_KEY)
    host = FunctionHost(HostConfig(app_dir=APPS / "http_app", port=free_port(), grace=5))
    await host.start()
    try:
        assert {f.name for f in host.functions} >= {"item_by_id", "enqueue"}
        url = f"{host.base_url}/api/items/3"
        async with ClientSession() as session, session.get(url) as response:
            assert response.status == 200
            assert (await response.json())["route_params"] == {"id": "3"}
    finally:
        await host.stop()
