"""Activities' blob, table and queue bindings, applied by the engine: a real Azurite and the
local host as a real process (tests/apps/activity_bindings_app), run twice: with activities
run in the orchestrating process (localActivities on) and through the work-item queue (off).

`transform` sets every output and then fails its first attempts on purpose; the engine
writes outputs only after an attempt succeeded, so exactly one of each must exist."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient

from tests.conftest import APPS, HostProcess, Storage, launch_host, unique

pytestmark = pytest.mark.integration

APP = APPS / "activity_bindings_app"
WAIT_SECONDS = 60.0


def app_copy(directory: Path, local_activities: bool) -> Path:
    """The app in `directory` with host.json's localActivities set as asked."""
    shutil.copy(APP / "function_app.py", directory / "function_app.py")
    shutil.copy(APP / "local.settings.json", directory / "local.settings.json")
    host_json = json.loads((APP / "host.json").read_text())
    host_json["extensions"]["durableTask"]["localActivities"] = local_activities
    (directory / "host.json").write_text(json.dumps(host_json))
    return directory


class Deployment:
    """A host of the app with its own task hub, containers, table and queue."""

    def __init__(self, host: HostProcess, env: dict[str, str], storage: Storage) -> None:
        self.host = host
        self.env = env
        self.blobs = BlobServiceClient.from_connection_string(storage.connection_string)
        self.tables = TableServiceClient.from_connection_string(storage.connection_string)
        self.done = QueueClient.from_connection_string(storage.connection_string, env["DONE"])

    def put(self, name: str, text: str) -> None:
        container = self.blobs.get_container_client(self.env["INBOX"])
        with contextlib.suppress(ResourceExistsError):
            container.create_container()
        container.upload_blob(name, text.encode(), overwrite=True)

    def outbox(self, prefix: str = "") -> dict[str, bytes]:
        container = self.blobs.get_container_client(self.env["OUTBOX"])
        try:
            names = [b.name for b in container.list_blobs(name_starts_with=prefix or None)]
        except ResourceNotFoundError:
            return {}
        return {n: container.download_blob(n).readall() for n in names}

    def rows(self, partition: str) -> list[dict[str, Any]]:
        client = self.tables.get_table_client(self.env["TABLE"])
        try:
            return [dict(e) for e in client.query_entities(f"PartitionKey eq '{partition}'")]
        except ResourceNotFoundError:
            return []

    def done_messages(self) -> list[dict[str, Any]]:
        try:
            peeked = self.done.peek_messages(max_messages=32)
        except ResourceNotFoundError:
            return []
        return [json.loads(base64.b64decode(m.content)) for m in peeked]

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        """Start process_document with `job` and wait until it is terminal."""
        instance_id = unique("doc")
        request = urllib.request.Request(
            self.host.url(f"/api/orchestrators/process_document/{instance_id}"),
            data=json.dumps(job).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 202
        deadline = time.monotonic() + WAIT_SECONDS
        url = self.host.url(f"/api/durabletask/instances/{instance_id}")
        while True:
            with urllib.request.urlopen(url, timeout=30) as response:
                status: dict[str, Any] = json.loads(response.read())
            if status["runtimeStatus"] in ("Completed", "Failed", "Terminated"):
                return status
            if time.monotonic() > deadline:
                pytest.fail(f"instance {instance_id} still {status['runtimeStatus']}")
            time.sleep(0.1)


@pytest.fixture(scope="module", params=[True, False], ids=["local", "work-item-queue"])
def deployment(
    request: pytest.FixtureRequest, azurite: Storage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    directory = tmp_path_factory.mktemp("activity-bindings")
    app_dir = app_copy(directory, local_activities=bool(request.param))
    env = {
        "DURABLE_TEST_HUB": f"Ab{uuid.uuid4().hex[:12]}",
        "INBOX": unique("inbox"),
        "OUTBOX": unique("outbox"),
        "TABLE": f"T{uuid.uuid4().hex[:12]}",
        "DONE": unique("done"),
    }
    host = launch_host(app_dir, azurite.connection_string, directory / "host.log", env)
    try:
        yield Deployment(host, env, azurite)
    finally:
        host.stop()


def test_outputs_are_written_once_by_the_attempt_that_succeeded(deployment: Deployment) -> None:
    source, target = unique("src") + ".txt", unique("dst") + ".txt"
    deployment.put(source, "durable bindings")
    status = deployment.run({"source": source, "target": target, "fail_times": 2})

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"]["transform"] == {"attempt": 3, "length": 16, "missing": False}
    assert deployment.outbox(target) == {target: b"DURABLE BINDINGS"}
    audits = deployment.outbox(f"audit/{target}/")
    assert list(audits.values()) == [b"attempt 3"], audits  # the failed attempts wrote nothing
    rows = deployment.rows(status["instanceId"])
    assert [(r["RowKey"], r["Attempt"], r["Length"]) for r in rows] == [(target, 3, 16)]
    done = [m for m in deployment.done_messages() if m["target"] == target]
    assert done == [{"target": target, "attempt": 3}]


def test_a_table_input_reads_the_row_an_earlier_activity_wrote(deployment: Deployment) -> None:
    source, target = unique("src"), unique("dst")
    deployment.put(source, "abc")
    status = deployment.run({"source": source, "target": target})
    row = status["output"]["row"]
    assert (row["PartitionKey"], row["RowKey"], row["Attempt"]) == (
        status["instanceId"], target, 1
    )  # fmt: skip
    assert row["Missing"] is False


def test_a_missing_input_blob_is_none(deployment: Deployment) -> None:
    target = unique("dst")
    status = deployment.run({"source": unique("absent"), "target": target})
    assert status["output"]["transform"] == {"attempt": 1, "length": 0, "missing": True}
    assert deployment.outbox(target) == {target: b""}


def test_an_expression_naming_no_input_property_fails_the_activity(
    deployment: Deployment,
) -> None:
    status = deployment.run({"target": unique("dst")})  # no "source": {source} cannot resolve
    assert status["runtimeStatus"] == "Failed"
    assert "binding 'source': no value for named parameter 'source'" in status["output"]
