"""DF's orchestration versioning on the local host, and `replay-check` as a deploy gate.

Three releases of one app share a task hub (tests/apps/versioning_app*): release 1 with
defaultVersion 1.0 (versionFailureStrategy Reject), release 2 with 2.0, and release 1 again
with Fail. Each host.json sets maxDequeueCount 2, so a rejection counted as a failed delivery
would poison the message after two rounds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestration.storage.hub import InstanceState, TaskHub
from tests.conftest import APPS, ROOT, HostLauncher, HostProcess, Storage, unique, wait_until
from tests.http_calls import call

V1 = APPS / "versioning_app"
V2 = APPS / "versioning_app_v2"
V1_FAIL = APPS / "versioning_app_fail"


@pytest.fixture
def hub_name() -> str:
    return "Ver" + unique("h").replace("-", "")[:20]


def launch(start_host: HostLauncher, app: Path, hub_name: str) -> HostProcess:
    return start_host(app, env={"DURABLE_TEST_HUB": hub_name})


def start(host: HostProcess, name: str, version: str | None = None, **params: str) -> Any:
    query = "&".join(f"{k}={v}" for k, v in {"version": version, **params}.items() if v)
    code, payload = call(host.url(f"/api/start/{name}?{query}"), "POST")
    assert code == 202, payload
    return payload


def status(payload: Any) -> dict[str, Any]:
    code, found = call(payload["statusQueryGetUri"])
    assert code in (200, 202), found  # 202 while it runs
    result: dict[str, Any] = found
    return result


def finished(payload: Any, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        found = status(payload)
        return found if found["runtimeStatus"] in ("Completed", "Failed") else None

    result: dict[str, Any] = wait_until(done, timeout=timeout, message="instance to finish")
    return result


def read(azurite: Storage, hub_name: str, instance_id: str) -> tuple[InstanceState, int]:
    """The instance's state row and the number of messages in the control poison queue."""

    async def go() -> tuple[InstanceState, int]:
        hub = TaskHub.from_connection_string(azurite.connection_string, hub_name)
        try:
            state = await hub.read_state(instance_id)
            assert state is not None
            poisoned = (await hub.poison_depths()).get(hub.names.control_queue + "-poison", 0)
            return state, poisoned
        finally:
            await hub.close()

    return asyncio.run(go())


def test_default_version_is_stamped_on_new_instances_and_their_children(
    azurite: Storage, start_host: HostLauncher, hub_name: str
) -> None:
    host = launch(start_host, V1, hub_name)
    own = finished(start(host, "own_version"))
    assert own["output"] == {"version": "1.0", "release": 1}
    explicit = finished(start(host, "own_version", "0.5"))
    assert explicit["output"]["version"] == "0.5"
    family = finished(start(host, "parent"))
    assert family["runtimeStatus"] == "Completed", family
    # A child without a version gets the worker's defaultVersion (as DF documents).
    assert family["output"] == {"own": "1.0", "children": ["1.0", "0.7", "0.9"]}


def test_a_start_message_without_a_version_gets_the_default(
    azurite: Storage, start_host: HostLauncher, hub_name: str
) -> None:
    host = launch(start_host, V1, hub_name)
    instance_id = unique("q")

    async def send() -> None:
        hub = TaskHub.from_connection_string(azurite.connection_string, hub_name)
        try:
            body = json.dumps({"name": "own_version", "instanceId": instance_id})
            await hub.queues.send(hub.names.starts_queue, base64.b64encode(body.encode()).decode())
        finally:
            await hub.close()

    asyncio.run(send())

    def completed() -> InstanceState | None:
        try:
            state, _ = read(azurite, hub_name, instance_id)
        except AssertionError:
            return None
        return state if state.status.value == "Completed" else None

    state = wait_until(completed, timeout=60, message="queued start to complete")
    assert state.version == "1.0"
    assert "1.0" in (state.output or "")
    assert host.process.poll() is None


def test_the_cli_start_stamps_the_default_version_or_takes_one(
    azurite: Storage, start_host: HostLauncher, hub_name: str
) -> None:
    launch(start_host, V1, hub_name)
    for extra, expected in (((), "1.0"), (("--version", "0.3"), "0.3")):
        done = cli(azurite, hub_name, "start", "own_version", "--wait", "--json", *extra)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["output"]["version"] == expected


def test_reject_leaves_a_newer_instance_for_a_newer_worker(
    azurite: Storage, start_host: HostLauncher, hub_name: str
) -> None:
    old = launch(start_host, V1, hub_name)
    payload = start(old, "own_version", "2.0")
    instance_id = payload["id"]
    old.wait_for_log("not running this instance here", timeout=30)
    # Several rounds of rejection (1 s apart) at maxDequeueCount 2: never poisoned.
    time.sleep(5)
    state, poisoned = read(azurite, hub_name, instance_id)
    assert state.status.value == "Pending"
    assert poisoned == 0
    rejections = old.log().count("not running this instance here")
    assert rejections == 1, "the rejection is logged once per instance"
    new = launch(start_host, V2, hub_name)
    done = finished(payload)
    assert done["runtimeStatus"] == "Completed"
    assert done["output"] == {"version": "2.0", "release": 2}
    assert "not running this instance here" not in new.log()


def test_fail_ends_a_newer_instance_naming_both_versions(
    azurite: Storage, start_host: HostLauncher, hub_name: str
) -> None:
    host = launch(start_host, V1_FAIL, hub_name)
    done = finished(start(host, "own_version", "2.0"))
    assert done["runtimeStatus"] == "Failed"
    assert "VersionMismatchError" in done["output"]
    assert "'2.0'" in done["output"] and "'1.0'" in done["output"]
    # Its own and older versions still run.
    assert finished(start(host, "own_version", "1.0"))["runtimeStatus"] == "Completed"


def replay_check(app: Path, azurite: Storage, hub_name: str, *args: str) -> Any:
    return cli(azurite, hub_name, "replay-check", "--app-dir", str(app), *args)


def cli(azurite: Storage, hub_name: str, *args: str) -> Any:
    """`python -m orchestration ARGS` on the test's hub (the app dir defaults to V1)."""
    if "--app-dir" not in args:
        args = (*args, "--app-dir", str(V1))
    env = {k: v for k, v in os.environ.items() if k != "AzureWebJobsStorage"}
    env.update(AzureWebJobsStorage=azurite.connection_string, DURABLE_TEST_HUB=hub_name)
    return subprocess.run(
        [sys.executable, "-m", "orchestration", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_replay_check_gates_a_deploy_that_would_break_in_flight_instances(
    azurite: Storage, start_host: HostLauncher, hub_name: str
) -> None:
    host = launch(start_host, V1, hub_name)
    renamed = start(host, "renamed", id=unique("renamed"))
    patched = start(host, "patched", id=unique("patched"))

    def waiting(payload: Any) -> bool:
        url = payload["statusQueryGetUri"]
        code, found = call(url + ("&" if "?" in url else "?") + "showHistory=true")
        events = [e["EventType"] for e in found.get("historyEvents") or []]
        return code in (200, 202) and "TaskCompleted" in events

    wait_until(lambda: waiting(renamed) and waiting(patched), 60, message="both at the wait")
    host.stop()

    same = replay_check(V1, azurite, hub_name)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "2 instance(s) checked" in same.stdout and "all replay" in same.stdout

    changed = replay_check(V2, azurite, hub_name)
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert f"FAIL  {renamed['id']}  renamed" in changed.stdout
    assert "at step 0" in changed.stdout
    assert "history has call_activity('prepare')" in changed.stdout
    assert "call_activity('prepare_v2')" in changed.stdout
    # The patched change replays: it is not listed.
    assert patched["id"] not in changed.stdout

    only_patched = replay_check(V2, azurite, hub_name, "--name", "patched", "--json")
    assert only_patched.returncode == 0, only_patched.stderr
    document = json.loads(only_patched.stdout)
    assert document["checked"] == 1 and document["failing"] == 0

    by_prefix = replay_check(V2, azurite, hub_name, "--instance-id-prefix", "renamed-")
    assert by_prefix.returncode == 1 and "1 instance(s) checked" in by_prefix.stdout

    # After the deploy the patched instance goes on down the old path (no marker).
    new = launch(start_host, V2, hub_name)
    # The links point at the stopped host: ask the new one.
    moved = {k: new.url("/" + v.split("/", 3)[3]) for k, v in patched.items() if k != "id"}
    code, _ = call(moved["sendEventPostUri"].replace("{eventName}", "go"), "POST", "ok")
    assert code == 202
    done = finished(moved)
    assert done["output"] == "finished x on release 2"
    assert new.process.poll() is None


def test_replay_check_exits_2_for_usage_and_connection_errors(
    azurite: Storage, hub_name: str, tmp_path: Path
) -> None:
    missing = replay_check(tmp_path, azurite, hub_name)
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: ")
    unreachable = subprocess.run(
        [
            sys.executable, "-m", "orchestration", "replay-check", "--app-dir", str(V1),
            "--connection", "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr"
            "/KBHBeksoGMGw==;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;"
            "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"
            "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1",
            "--hub", "Nowhere",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DURABLE_TEST_HUB": hub_name},
    )  # fmt: skip
    assert unreachable.returncode == 2, unreachable.stdout + unreachable.stderr
    assert unreachable.stderr.startswith("error: ")
    bad_flag = replay_check(V1, azurite, hub_name, "--status", "Sleeping")
    assert bad_flag.returncode == 2
