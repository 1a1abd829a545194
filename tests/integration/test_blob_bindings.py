"""Blob triggers and blob/table bindings on the local host, against a real Azurite, with the
host as real processes (tests/apps/blob_app).

Every blob-trigger run of `on_upload` writes one record blob, `runs/{name}/{rand-guid}.json`,
so counting records counts runs. The blob listeners poll every 0.2 s here
(ORCHESTRATION_BLOB_POLLING_INTERVAL), so "did not fire" means "not in several scans".
"""

from __future__ import annotations

import base64
import contextlib
import json
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient

from orchestration.host import FunctionHost, HostConfig, HostStartupError
from orchestration.host.azurite import free_port
from tests.conftest import APPS, HostLauncher, HostProcess, Storage, launch_host, unique, wait_until

pytestmark = pytest.mark.integration

APP = APPS / "blob_app"
POISON_QUEUE = "webjobs-blobtrigger-poison"
SCANS = 1.0  # seconds: several scans at the 0.2 s polling interval


def app_env() -> dict[str, str]:
    """Settings naming this test's own containers, table, queue and host id."""
    return {
        "UPLOADS": unique("up"),
        "CSV": unique("csv"),
        "BROKEN": unique("broken"),
        "SLOW": unique("slow"),
        "RESULTS": unique("res"),
        "DOCS": unique("docs"),
        "JOBS": unique("jobs"),
        "TABLE": f"T{uuid.uuid4().hex[:12]}",
        "AzureFunctionsWebHost__hostid": unique("blobhost"),
        "ORCHESTRATION_BLOB_POLLING_INTERVAL": "0.2",
    }


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(method: str, url: str, body: bytes | None = None) -> Reply:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, response.read())
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.read())


class Account:
    """Synchronous SDK access to the test storage, for arranging and checking."""

    def __init__(self, storage: Storage) -> None:
        self.blobs = BlobServiceClient.from_connection_string(storage.connection_string)
        self.tables = TableServiceClient.from_connection_string(storage.connection_string)
        self.connection_string = storage.connection_string

    def put(self, container: str, name: str, data: bytes | str) -> str:
        client = self.blobs.get_container_client(container)
        with contextlib.suppress(ResourceExistsError):
            client.create_container()
        blob = client.get_blob_client(name)
        return str(blob.upload_blob(data, overwrite=True)["etag"])

    def get(self, container: str, name: str) -> bytes | None:
        try:
            return bytes(self.blobs.get_blob_client(container, name).download_blob().readall())
        except ResourceNotFoundError:
            return None

    def names(self, container: str, prefix: str = "") -> list[str]:
        try:
            client = self.blobs.get_container_client(container)
            return sorted(b.name for b in client.list_blobs(name_starts_with=prefix or None))
        except ResourceNotFoundError:
            return []

    def runs(self, env: Mapping[str, str], name: str) -> list[dict[str, Any]]:
        """The records of `on_upload`'s runs for blob `name`."""
        prefix = f"runs/{name}/"
        return [
            json.loads(self.get(env["RESULTS"], record) or b"{}")
            for record in self.names(env["RESULTS"], prefix)
        ]

    def entities(self, table: str, partition: str) -> list[dict[str, Any]]:
        client = self.tables.get_table_client(table)
        try:
            return [dict(e) for e in client.query_entities(f"PartitionKey eq '{partition}'")]
        except ResourceNotFoundError:
            return []

    def upsert(self, table: str, entity: dict[str, Any]) -> None:
        with contextlib.suppress(ResourceExistsError):
            self.tables.create_table(table)
        self.tables.get_table_client(table).upsert_entity(entity)

    def send(self, queue: str, body: str) -> None:
        client = QueueClient.from_connection_string(self.connection_string, queue)
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        client.send_message(base64.b64encode(body.encode()).decode())

    def poison(self, container: str) -> list[dict[str, Any]]:
        """The blob trigger poison messages about blobs of `container`."""
        client = QueueClient.from_connection_string(self.connection_string, POISON_QUEUE)
        try:
            peeked = client.peek_messages(max_messages=32)
        except ResourceNotFoundError:
            return []
        messages = [json.loads(base64.b64decode(m.content)) for m in peeked]
        return [m for m in messages if m["ContainerName"] == container]


@pytest.fixture(scope="module")
def account(azurite: Storage) -> Account:
    return Account(azurite)


@pytest.fixture(scope="module")
def shared(azurite: Storage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    """One blob_app host for the tests that only add their own blobs, rows and messages."""
    env = app_env()
    log = tmp_path_factory.mktemp("blob-host") / "host.log"
    host = launch_host(APP, azurite.connection_string, log, env)
    host.env = {**host.env, **env}
    yield host
    host.stop()


def counts(account: Account, env: Mapping[str, str], names: list[str]) -> dict[str, int]:
    return {name: len(account.runs(env, name)) for name in names}


# The blob trigger


def test_blob_trigger_fires_once_for_a_new_blob_and_again_when_it_changes(
    shared: HostProcess, account: Account
) -> None:
    env = shared.env
    account.put(env["UPLOADS"], "doc.txt", "first")
    wait_until(lambda: account.runs(env, "doc.txt"), 15, message="first run")
    time.sleep(SCANS)
    assert [r["text"] for r in account.runs(env, "doc.txt")] == ["first"], "unchanged: no rerun"
    account.put(env["UPLOADS"], "doc.txt", "second")
    wait_until(lambda: len(account.runs(env, "doc.txt")) == 2, 15, message="run of the change")
    time.sleep(SCANS)
    assert sorted(r["text"] for r in account.runs(env, "doc.txt")) == ["first", "second"]


def test_trigger_gives_an_input_stream_with_name_length_and_uri(
    shared: HostProcess, account: Account
) -> None:
    env = shared.env
    account.put(env["UPLOADS"], "sub/dir/data.bin", b"0123456789")
    (record,) = wait_until(lambda: account.runs(env, "sub/dir/data.bin"), 15)
    assert record["name"] == f"{env['UPLOADS']}/sub/dir/data.bin"  # as Azure's worker gives it
    assert record["length"] == 10
    assert record["text"] == "0123456789"
    assert record["uri"].endswith(f"/{env['UPLOADS']}/sub/dir/data.bin")


def test_path_parameters_fill_an_output_blob_path_and_a_table_row(
    shared: HostProcess, account: Account
) -> None:
    env = shared.env
    account.put(env["CSV"], "fruit/apples.csv", b"a,b\n1,2\n")
    (copy,) = wait_until(lambda: account.names(env["RESULTS"], "csv/fruit/"), 15)
    assert copy.startswith("csv/fruit/apples-") and copy.endswith(".bin")
    assert account.get(env["RESULTS"], copy) == b"a,b\n1,2\n"
    (row,) = wait_until(lambda: account.entities(env["TABLE"], "fruit"), 10)
    assert row["Size"] == 8
    guid = copy.removeprefix("csv/fruit/apples-").removesuffix(".bin")
    assert row["RowKey"] == guid, "{rand-guid} is one value in all of an invocation's bindings"


def test_a_blob_output_of_the_same_process_wakes_the_idle_listener_at_once(
    start_host: HostLauncher, account: Account
) -> None:
    env = {**app_env(), "ORCHESTRATION_BLOB_POLLING_INTERVAL": "30"}
    host = start_host(APP, env)
    time.sleep(2.5)  # scans at start and 2 s later; the next is 4 s after that, then 8 s
    posted = time.monotonic()
    assert http("POST", host.url("/api/upload/woken.txt"), b"wake up").status == 201
    wait_until(lambda: account.runs(env, "woken.txt"), 10, interval=0.05)
    assert time.monotonic() - posted < 2.0, "the write woke the listener, not its next scan"


def test_failing_function_ends_with_a_poison_message_after_five_attempts(
    shared: HostProcess, account: Account
) -> None:
    env = shared.env
    etag = account.put(env["BROKEN"], "bad.txt", "boom")
    (message,) = wait_until(lambda: account.poison(env["BROKEN"]), 20, message="poison message")
    assert message == {
        "Type": "BlobTrigger",
        "FunctionId": "Host.Functions.always_fails",
        "BlobType": "BlockBlob",
        "ContainerName": env["BROKEN"],
        "BlobName": "bad.txt",
        "ETag": etag,
    }
    time.sleep(SCANS)
    assert shared.log().count("Executed 'Functions.always_fails' (Failed") == 5
    assert len(account.poison(env["BROKEN"])) == 1


# Blob input and output


def test_blob_input_named_by_a_route_parameter_and_none_when_missing(
    shared: HostProcess, account: Account
) -> None:
    account.put(shared.env["DOCS"], "hello.txt", "hi there")
    assert http("GET", shared.url("/api/files/hello.txt")) == Reply(200, b"hi there")
    assert http("GET", shared.url("/api/files/nothing.txt")) == Reply(404, b"missing")


def test_blob_input_as_stream_or_bytes_by_annotation_and_data_type(
    shared: HostProcess, account: Account
) -> None:
    docs = shared.env["DOCS"]
    account.put(docs, "raw.bin", b"\x00\xff\x10")
    stream = http("GET", shared.url("/api/streams/raw.bin")).json()
    assert stream["name"] == f"{docs}/raw.bin"
    assert (stream["length"], stream["data"]) == (3, "00ff10")
    assert stream["uri"].endswith(f"/{docs}/raw.bin")
    assert http("GET", shared.url("/api/lookup?file=raw.bin")) == Reply(200, b"\x00\xff\x10")
    assert http("GET", shared.url("/api/lookup?file=none.bin")).status == 404


def test_blob_output_writes_str_and_bytes(shared: HostProcess, account: Account) -> None:
    docs = shared.env["DOCS"]
    assert http("POST", shared.url("/api/write/note.txt"), "héllo".encode()).status == 201
    assert account.get(docs, "note.txt") == "héllo".encode()
    assert http("POST", shared.url("/api/write-bytes/blob.bin"), b"\x01\x02").status == 201
    assert account.get(docs, "blob.bin") == b"\x01\x02"


def test_queue_message_properties_name_the_input_blob_and_the_return_blob(
    shared: HostProcess, account: Account
) -> None:
    env = shared.env
    account.put(env["DOCS"], "report.txt", "quarterly")
    account.send(env["JOBS"], json.dumps({"doc": "report.txt"}))
    account.send(env["JOBS"], json.dumps({"doc": "absent.txt"}))
    copies = wait_until(lambda: len(account.names(env["RESULTS"], "copies/")) == 2 and
                        account.names(env["RESULTS"], "copies/"), 15)  # fmt: skip
    by_doc = {name.split("/")[1].split(".txt-")[0]: name for name in copies}
    assert account.get(env["RESULTS"], by_doc["report"]) == b"copied:quarterly"
    assert account.get(env["RESULTS"], by_doc["absent"]) == b"missing"  # a missing blob: None
    message_id = by_doc["report"].removeprefix("copies/report.txt-").removesuffix(".txt")
    uuid.UUID(message_id)  # {Id}: the queue message's id, from the trigger's metadata


# Tables


def test_table_input_reads_one_entity_or_a_filtered_list_with_take(
    shared: HostProcess, account: Account
) -> None:
    table = shared.env["TABLE"]
    for row, kind in (("1", "a"), ("2", "a"), ("3", "a"), ("4", "b")):
        account.upsert(table, {"PartitionKey": "inv", "RowKey": row, "Kind": kind, "N": int(row)})
    entity = http("GET", shared.url("/api/entities/inv/2")).json()
    assert (entity["PartitionKey"], entity["RowKey"], entity["N"]) == ("inv", "2", 2)
    assert http("GET", shared.url("/api/entities/inv/9")).status == 404
    listed = http("GET", shared.url("/api/entities/inv?kind=a")).json()
    assert [e["RowKey"] for e in listed] == ["1", "2"]  # take=2
    assert [e["RowKey"] for e in http("GET", shared.url("/api/entities/inv?kind=b")).json()] == [
        "4"
    ]
    quoted = http("GET", shared.url("/api/entities/inv?kind=a'%20or%20'1'%20eq%20'1")).json()
    assert quoted == [], "a value in a filter expression is quoted, never OData"


def test_table_output_takes_an_entity_or_a_list_of_them(
    shared: HostProcess, account: Account
) -> None:
    table = shared.env["TABLE"]
    one = json.dumps({"RowKey": "solo", "Colour": "red"}).encode()
    assert http("POST", shared.url("/api/save/out"), one).status == 201
    many = json.dumps([{"RowKey": "x", "Colour": "blue"}, {"RowKey": "y", "Colour": "green"}])
    assert http("POST", shared.url("/api/save/out"), many.encode()).status == 201
    saved = {e["RowKey"]: e["Colour"] for e in account.entities(table, "out")}
    assert saved == {"solo": "red", "x": "blue", "y": "green"}


def test_rand_guid_is_the_same_in_all_bindings_of_one_invocation(
    shared: HostProcess, account: Account
) -> None:
    env = shared.env
    for _ in range(2):
        assert http("POST", shared.url("/api/stamp/stamps")).status == 201
    rows = sorted(e["RowKey"] for e in account.entities(env["TABLE"], "stamps"))
    blobs = sorted(
        n.removeprefix("stamps/").removesuffix(".txt")
        for n in account.names(env["DOCS"], "stamps/")
    )
    assert len(rows) == 2 and rows[0] != rows[1], "a new GUID per invocation"
    assert rows == blobs


# Start-up validation


def test_binding_naming_data_its_trigger_lacks_stops_the_host_process(
    start_host: HostLauncher,
) -> None:
    host = start_host(APP / "invalid", {"BAD_CASE": "unknown_parameter"}, wait=False)
    assert host.wait_exit() == 1
    assert (
        "function 'copy_upload': binding 'out': path 'results/{nothing}.txt' uses ['nothing'], "
        "which the trigger does not provide"
    ) in host.log()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("bad_container", "function 'save': binding 'out': invalid container name"),
        ("missing_connection", "function 'entity': binding 'row': Storage account connection"),
        ("bad_trigger_path", "function 'broken': blob trigger 'blob': unbalanced brace"),
        ("unsupported_trigger", "function 'on_order': trigger 'msg' of type 'serviceBusTrigger'"),
    ],
)
async def test_invalid_binding_configuration_is_refused_at_start(
    azurite: Storage, monkeypatch: pytest.MonkeyPatch, case: str, expected: str
) -> None:
    """In this process (the start-up checks need no listener): one case per host start."""
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("BAD_CASE", case)
    host = FunctionHost(HostConfig(APP / "invalid", port=free_port(), print_banner=False))
    with pytest.raises(HostStartupError) as refused:
        await host.start()
    assert expected in str(refused.value)


# Several hosts, restarts


def test_two_hosts_on_one_storage_run_each_blob_exactly_once(
    start_host: HostLauncher, account: Account
) -> None:
    env = app_env()
    first, second = (start_host(APP, env, wait=False) for _ in range(2))
    for host in (first, second):
        host.wait_for_log("Host started", timeout=60)
    names = [f"item-{i:02d}.txt" for i in range(24)]
    for name in names:
        account.put(env["UPLOADS"], name, name)
    wait_until(lambda: all(counts(account, env, names).values()), 30, message="a run per blob")
    time.sleep(SCANS)
    assert counts(account, env, names) == dict.fromkeys(names, 1)
    pids = {account.runs(env, name)[0]["pid"] for name in names}
    assert pids <= {first.process.pid, second.process.pid}


def test_restart_skips_processed_blobs_and_runs_those_added_while_down(
    start_host: HostLauncher, account: Account
) -> None:
    env = app_env()
    before = ["a.txt", "b.txt", "c.txt"]
    account.put(env["UPLOADS"], "present-at-first-start.txt", "old")
    host = start_host(APP, env)
    for name in before:
        account.put(env["UPLOADS"], name, name)
    everything = ["present-at-first-start.txt", *before]
    wait_until(lambda: all(counts(account, env, everything).values()), 15, message="first runs")
    assert host.stop() == 0
    added = ["d.txt", "e.txt"]
    for name in added:
        account.put(env["UPLOADS"], name, name)
    again = start_host(APP, env)
    everything += added
    wait_until(lambda: all(counts(account, env, everything).values()), 15, message="new runs")
    time.sleep(SCANS)
    assert counts(account, env, everything) == dict.fromkeys(everything, 1)
    assert {r["pid"] for name in added for r in account.runs(env, name)} == {again.process.pid}


def test_blob_of_a_killed_host_runs_again_once_its_claim_expires(
    start_host: HostLauncher, account: Account, tmp_path: Path
) -> None:
    env = app_env()
    doomed = start_host(APP, {**env, "SLOW_SECONDS": "60"})
    account.put(env["SLOW"], "job.txt", "work")
    doomed.wait_for_log("slow started on work")
    doomed.process.send_signal(signal.SIGKILL)
    doomed.wait_exit()
    survivor = start_host(APP, env)
    done = wait_until(lambda: account.names(env["RESULTS"], "slow/job.txt/"), 30)
    assert len(done) == 1
    assert account.get(env["RESULTS"], done[0]) == str(survivor.process.pid).encode()
