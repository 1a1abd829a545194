"""The bundled workflows, end to end: the project's function_app.py on the local host, over HTTP,
against the session Azurite (one host process and one fresh task hub for the module)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from orchestration.storage.names import HubNames
from tests.conftest import APPS, TEST_FUNCTION_KEY, HostProcess, Storage, launch_host, unique

pytestmark = pytest.mark.integration

APP_DIR = APPS / "workflows_app"
KEY = {"x-functions-key": TEST_FUNCTION_KEY}
TERMINAL = {"Completed", "Failed", "Terminated"}
WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class Reply:
    """An HTTP response: status, headers and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body decoded from JSON."""
        return json.loads(self.body)


def http(
    method: str,
    url: str,
    payload: Any = None,
    headers: Mapping[str, str] = KEY,
    raw: bytes | None = None,
) -> Reply:
    """One request with a JSON body (when `payload` is not None, or the `raw` bytes);
    errors are replies too."""
    body = raw if raw is not None else None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as err:
        return Reply(err.code, dict(err.headers), err.read())


@dataclass
class Run:
    """A finished instance: its final status and every custom status seen while polling."""

    status: dict[str, Any]
    custom_statuses: list[Any] = field(default_factory=list)

    @property
    def output(self) -> Any:
        """The instance's output."""
        return self.status["output"]


def poll(status_url: str, timeout: float = WAIT_SECONDS) -> Run:
    """Poll a statusQueryGetUri until the instance is terminal (bounded wait)."""
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    while True:
        reply = http("GET", status_url)
        assert reply.status in (200, 202), (reply.status, reply.body)
        status = reply.json()
        if not seen or seen[-1] != status["customStatus"]:
            seen.append(status["customStatus"])
        if status["runtimeStatus"] in TERMINAL:
            assert reply.status == 200
            return Run(status, seen)
        assert reply.status == 202
        if time.monotonic() > deadline:
            pytest.fail(f"instance still {status['runtimeStatus']} after {timeout:.0f}s: {status}")
        time.sleep(0.1)


class Workflows:
    """The host under test, with helpers to start instances and wait for them."""

    def __init__(self, host: HostProcess, hub: str = "", connection_string: str = "") -> None:
        self.host = host
        self.hub = hub  # its task hub's name
        self.connection_string = connection_string

    @property
    def names(self) -> HubNames:
        return HubNames(self.hub)

    def start_with_id(self, name: str, instance_id: str, payload: Any = None) -> None:
        """POST /api/orchestrators/{name}/{instance_id}, expecting 202."""
        reply = http("POST", self.url(f"/api/orchestrators/{name}/{instance_id}"), payload)
        assert reply.status == 202, (reply.status, reply.body)

    def url(self, path: str) -> str:
        """Absolute URL of `path` on the host."""
        return self.host.url(path)

    def start(self, name: str, payload: Any = None) -> dict[str, Any]:
        """POST /api/orchestrators/{name}; the check-status payload."""
        reply = http("POST", self.url(f"/api/orchestrators/{name}"), payload)
        assert reply.status == 202, (reply.status, reply.body)
        management = reply.json()
        assert reply.headers["Location"] == management["statusQueryGetUri"]
        return management

    def run(self, name: str, payload: Any = None) -> Run:
        """Start `name` and wait until it finishes."""
        return poll(self.start(name, payload)["statusQueryGetUri"])

    def status(self, instance_id: str, query: str = "") -> dict[str, Any]:
        """GET the status of an instance by id."""
        path = f"/api/durabletask/instances/{quote(instance_id, safe='')}{query}"
        reply = http("GET", self.url(path))
        assert reply.status in (200, 202), (reply.status, reply.body)
        return dict(reply.json())

    def wait_custom_status(self, instance_id: str, expected: Any) -> None:
        """Wait until the instance's custom status equals `expected`."""
        deadline = time.monotonic() + WAIT_SECONDS
        while (status := self.status(instance_id))["customStatus"] != expected:
            assert status["runtimeStatus"] not in TERMINAL, status
            if time.monotonic() > deadline:
                pytest.fail(f"custom status never became {expected!r}: {status}")
            time.sleep(0.1)


W = TypeVar("W", bound=Workflows)


@contextlib.contextmanager
def on_own_hub(
    azurite: Storage, tmp_path_factory: pytest.TempPathFactory, prefix: str, kind: type[W]
) -> Iterator[W]:
    """A host on the project's app with a task hub of its own (named `prefix` + random)."""
    hub = f"{prefix}{uuid.uuid4().hex[:16]}"
    log_path = Path(tmp_path_factory.mktemp(prefix.lower())) / "host.log"
    host = launch_host(APP_DIR, azurite.connection_string, log_path, {"WORKFLOWS_TEST_HUB": hub})
    try:
        yield kind(host, hub, azurite.connection_string)
    finally:
        host.stop()


@pytest.fixture(scope="module")
def workflows(azurite: Storage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workflows]:
    """One host for the module on the project's app, with a task hub of its own."""
    with on_own_hub(azurite, tmp_path_factory, "Wf", Workflows) as running:
        yield running


def history(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The `historyEvents` of a status fetched with showHistory=true."""
    return list(status["historyEvents"])


def scheduled(events: list[dict[str, Any]]) -> list[str]:
    """Names of the activities scheduled, in order."""
    return [e["Name"] for e in events if e["EventType"] == "TaskScheduled"]


# -- the project's plain functions still work ---------------------------------------------
def test_plain_functions_still_served(workflows: Workflows) -> None:
    name = unique("ann")
    assert http("GET", workflows.url("/api/health"), headers={}).json() == {"status": "ok"}
    reply = http("GET", workflows.url(f"/api/hello/{name}"), headers={})
    assert (reply.status, reply.body) == (200, f"Hello, {name}!\n".encode())
    workflows.host.wait_for_log(f"greeted {name}")


def test_management_api_needs_the_function_key(workflows: Workflows) -> None:
    url = workflows.url("/api/orchestrators/hello_sequence")
    assert http("POST", url, headers={}).status == 401
    assert http("POST", workflows.url("/api/jobs"), headers={}).status == 401


# -- function chaining -------------------------------------------------------------------
def test_hello_sequence_chains_and_records_history(workflows: Workflows) -> None:
    management = workflows.start("hello_sequence")
    run = poll(management["statusQueryGetUri"])
    assert run.status["runtimeStatus"] == "Completed"
    assert run.output == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    assert run.status["name"] == "hello_sequence"
    assert run.status["input"] is None

    status = workflows.status(management["id"], "?showHistory=true&showHistoryOutput=true")
    events = history(status)
    kinds = [e["EventType"] for e in events]
    assert kinds[:2] == ["OrchestratorStarted", "ExecutionStarted"]
    assert events[1]["Name"] == "hello_sequence"
    assert kinds[-1] == "ExecutionCompleted"
    assert events[-1]["Result"] == run.output
    assert scheduled(events) == ["say_hello"] * 3
    completed = [e["Result"] for e in events if e["EventType"] == "TaskCompleted"]
    assert completed == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


def test_hello_sequence_takes_cities(workflows: Workflows) -> None:
    run = workflows.run("hello_sequence", ["Oslo", "Lima"])
    assert run.output == ["Hello Oslo!", "Hello Lima!"]


# -- fan-out/fan-in ----------------------------------------------------------------------
def test_word_count_fans_out_and_sums(workflows: Workflows) -> None:
    run = workflows.run("word_count", {"documents": 6})
    assert run.status["runtimeStatus"] == "Completed"
    assert run.output == {
        "documents": 6,
        "per_document": [10, 11, 12, 13, 14, 15],
        "total_words": 75,
    }


# -- async HTTP API ----------------------------------------------------------------------
def test_long_job_polled_through_the_check_status_url(workflows: Workflows) -> None:
    reply = http("POST", workflows.url("/api/jobs"), {"steps": 5})
    assert reply.status == 202, reply.body
    management = reply.json()
    assert reply.headers["Location"] == management["statusQueryGetUri"]
    run = poll(reply.headers["Location"])
    assert run.status["runtimeStatus"] == "Completed"
    job = management["id"]
    digests = [hashlib.sha256(f"{job}:{i}".encode()).hexdigest()[:8] for i in range(5)]
    assert run.output == {"steps": 5, "digests": digests}
    assert run.status["customStatus"] == {"completed": 5, "total": 5}
    progress = [s["completed"] for s in run.custom_statuses if s is not None]
    assert progress == sorted(progress)
    assert all(s["total"] == 5 for s in run.custom_statuses if s is not None)


def test_long_job_also_starts_from_the_generic_starter(workflows: Workflows) -> None:
    run = workflows.run("long_job", {"steps": 2})
    assert run.output["steps"] == 2
    assert run.status["customStatus"] == {"completed": 2, "total": 2}


# -- monitor -----------------------------------------------------------------------------
def test_monitor_stops_when_the_job_completes(workflows: Workflows) -> None:
    payload = {"job": "export-7", "interval_seconds": 1, "expiry_seconds": 60, "ready_after": 3}
    run = workflows.run("job_monitor", payload)
    assert run.output == {"job": "export-7", "status": "Completed", "checks": 3}
    assert run.status["customStatus"] == {"checks": 3, "state": "Completed"}


def test_monitor_expires(workflows: Workflows) -> None:
    payload = {"job": "export-8", "interval_seconds": 1, "expiry_seconds": 2}
    run = workflows.run("job_monitor", payload)
    assert run.output == {"job": "export-8", "status": "Expired", "checks": 3}
    assert run.status["customStatus"] == {"checks": 3, "state": "Running"}


# -- human interaction -------------------------------------------------------------------
def test_approval_event_wins_and_cancels_the_timer(workflows: Workflows) -> None:
    request = {"subject": "expense report", "requester": "ann", "timeout_seconds": 300}
    management = workflows.start("approval_workflow", request)
    workflows.wait_custom_status(management["id"], {"stage": "awaiting approval"})
    event_url = management["sendEventPostUri"].replace("{eventName}", "ApprovalEvent")
    reply = http("POST", event_url, {"approved": True, "by": "bob"})
    assert reply.status == 202, reply.body
    run = poll(management["statusQueryGetUri"])
    assert run.status["runtimeStatus"] == "Completed"
    assert run.output == {
        "status": "Approved",
        "by": "bob",
        "summary": "expense report: Approved",
    }
    assert run.status["customStatus"] == {"stage": "approved"}


def test_approval_rejected_by_an_event_raised_right_after_start(workflows: Workflows) -> None:
    management = workflows.start("approval_workflow", {"subject": "trip", "timeout_seconds": 300})
    event_url = management["sendEventPostUri"].replace("{eventName}", "ApprovalEvent")
    assert http("POST", event_url, {"approved": False, "by": "eve"}).status == 202
    run = poll(management["statusQueryGetUri"])
    assert run.output == {"status": "Rejected", "by": "eve", "summary": "trip: Rejected"}


def test_approval_times_out(workflows: Workflows) -> None:
    request = {"subject": "laptop", "requester": "ann", "timeout_seconds": 1}
    run = workflows.run("approval_workflow", request)
    assert run.status["runtimeStatus"] == "Completed"
    assert run.output == {"status": "TimedOut", "by": None, "summary": "laptop: TimedOut"}
    assert run.status["customStatus"] == {"stage": "timedout"}


# -- sub-orchestrations ------------------------------------------------------------------
def test_parent_runs_a_child_per_item(workflows: Workflows) -> None:
    management = workflows.start("process_batch", {"items": ["Tokyo", "Seattle", "London"]})
    run = poll(management["statusQueryGetUri"])
    parent = management["id"]
    assert run.status["runtimeStatus"] == "Completed"
    assert run.output == {
        "processed": 3,
        "results": [
            {"item": city, "greeting": f"Hello {city}!", "parent": parent}
            for city in ("Tokyo", "Seattle", "London")
        ],
    }
    child = workflows.status(f"{parent}:item-1")
    assert (child["name"], child["runtimeStatus"]) == ("process_item", "Completed")
    assert child["input"] == {"city": "Seattle"}


# -- retry with backoff ------------------------------------------------------------------
def test_retry_succeeds_after_failures(workflows: Workflows) -> None:
    payload = {"failures": 2, "max_attempts": 4, "first_retry_ms": 100, "backoff": 2.0}
    management = workflows.start("retry_with_backoff", payload)
    run = poll(management["statusQueryGetUri"])
    assert run.status["runtimeStatus"] == "Completed"
    assert run.output == {"status": "Succeeded", "attempts": 3}
    events = history(workflows.status(management["id"], "?showHistory=true"))
    assert scheduled(events) == ["flaky_operation"] * 3
    assert [e["EventType"] for e in events].count("TaskFailed") == 2
    assert [e["EventType"] for e in events].count("TimerCreated") == 2


def test_retry_gives_up_after_max_attempts(workflows: Workflows) -> None:
    payload = {"failures": 9, "max_attempts": 3, "first_retry_ms": 100}
    run = workflows.run("retry_with_backoff", payload)
    assert run.status["runtimeStatus"] == "Failed"
    assert "TransientError: attempt 3 failed" in run.output


# -- saga --------------------------------------------------------------------------------
def test_saga_books_everything(workflows: Workflows) -> None:
    run = workflows.run("trip_booking", {"trip_id": "T100"})
    assert run.output == {
        "status": "Booked",
        "bookings": {"flight": "FL-T100", "hotel": "HO-T100", "car": "CA-T100"},
    }
    assert run.status["customStatus"] == {"stage": "booked"}


def test_saga_compensates_in_reverse_order(workflows: Workflows) -> None:
    management = workflows.start("trip_booking", {"trip_id": "T200", "fail_car": True})
    run = poll(management["statusQueryGetUri"])
    assert run.status["runtimeStatus"] == "Completed"
    assert run.output == {
        "status": "Compensated",
        "failed_step": "book_car",
        "error": "CarUnavailableError: no car available for trip T200",
        "compensations": ["cancelled HO-T200", "cancelled FL-T200"],
    }
    assert run.status["customStatus"] == {"stage": "compensated", "failed": "book_car"}
    events = history(workflows.status(management["id"], "?showHistory=true"))
    assert scheduled(events) == [
        "book_flight",
        "book_hotel",
        "book_car",
        "cancel_hotel",
        "cancel_flight",
    ]


# -- the order process -------------------------------------------------------------------
ITEMS = [{"sku": "book", "quantity": 2}, {"sku": "apple", "quantity": 3}]


def test_order_is_paid_shipped_and_notified(workflows: Workflows) -> None:
    order = {"order_id": "o-1", "items": ITEMS, "card": "4111", "customer": "ann@example.com"}
    management = workflows.start("order_process", order)
    run = poll(management["statusQueryGetUri"])
    assert run.status["runtimeStatus"] == "Completed"
    assert run.output == {
        "order_id": "o-1",
        "status": "Completed",
        "total_cents": 2650,
        "reservation": "RSV-o-1",
        "payment": "PAY-o-1-2650",
        "tracking": "TRK-o-1",
    }
    assert run.status["customStatus"] == {"stage": "completed"}
    events = history(workflows.status(management["id"], "?showHistory=true"))
    assert scheduled(events) == [
        "check_inventory",
        "reserve_inventory",
        "charge_payment",
        "ship_order",
        "notify_customer",
    ]


def test_declined_payment_releases_the_reservation(workflows: Workflows) -> None:
    order = {"order_id": "o-2", "items": ITEMS, "card": "declined"}
    management = workflows.start("order_process", order)
    run = poll(management["statusQueryGetUri"])
    assert run.status["runtimeStatus"] == "Completed"
    assert run.output == {
        "order_id": "o-2",
        "status": "PaymentDeclined",
        "error": "card declined for order o-2",
        "released": "released RSV-o-2",
    }
    assert run.status["customStatus"] == {"stage": "payment declined"}
    status = workflows.status(management["id"], "?showHistory=true&showHistoryOutput=true")
    events = history(status)
    assert scheduled(events) == [
        "check_inventory",
        "reserve_inventory",
        "charge_payment",
        "release_reservation",
        "notify_customer",
    ]
    failed = [e for e in events if e["EventType"] == "TaskFailed"]
    assert len(failed) == 1


def test_order_out_of_stock_is_rejected(workflows: Workflows) -> None:
    order = {"order_id": "o-3", "items": [{"sku": "lamp", "quantity": 5}], "card": "4111"}
    run = workflows.run("order_process", order)
    assert run.output == {"order_id": "o-3", "status": "OutOfStock", "missing": ["lamp"]}
    assert run.status["customStatus"] == {"stage": "rejected"}


def test_the_job_starter_refuses_bad_bodies_with_a_json_400(workflows: Workflows) -> None:
    for body in (b"[" * 50_000 + b"]" * 50_000, b'{"steps": 1e99999}', b'{"steps": 0}', b"[1]"):
        reply = http("POST", workflows.url("/api/jobs"), raw=body)
        assert reply.status == 400, reply.body[:200]
        assert reply.json()["error"] == "Invalid request"
    assert (
        http("POST", workflows.url("/api/jobs"), raw=b'{"steps": 2, "x": "\\ud800"}').status == 400
    )


# -- upload → report: blob trigger, activities with blob and table bindings --------------
UPLOAD_TEXT = "one two three\nfour\n\nfive six\n\n\n  seven eight nine ten  \n"


def wait_report(workflows: Workflows, name: str, words: int) -> dict[str, Any]:
    """GET /api/reports/{name} until it answers 200 with `words` words (404 meanwhile)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        reply = http("GET", workflows.url(f"/api/reports/{name}"))
        if reply.status == 200 and reply.json()["summary"]["Words"] == words:
            return dict(reply.json())
        assert reply.status in (200, 404), (reply.status, reply.body)
        if time.monotonic() > deadline:
            pytest.fail(f"no report of {words} words for {name}: {reply.status} {reply.body!r}")
        time.sleep(0.2)


def upload_instances(workflows: Workflows, name: str) -> list[dict[str, Any]]:
    """The summarize_upload instances started for the upload `name`."""
    reply = http("GET", workflows.url("/api/durabletask/instances?top=1000"))
    assert reply.status == 200, reply.body
    return [
        i
        for i in reply.json()
        if i["name"] == "summarize_upload" and (i["input"] or {}).get("name") == name
    ]


def test_an_upload_becomes_a_report_blob_and_a_summary_row(
    workflows: Workflows, azurite: Storage
) -> None:
    name = unique("notes") + ".txt"
    assert http("GET", workflows.url(f"/api/reports/{name}")).status == 404
    reply = http("PUT", workflows.url(f"/api/uploads/{name}"), raw=UPLOAD_TEXT.encode())
    assert reply.status == 202, reply.body
    assert reply.json() == {"upload": f"uploads/{name}", "report": f"/api/reports/{name}"}

    answer = wait_report(workflows, name, 10)
    summary, report = answer["summary"], answer["report"]
    assert (summary["Name"], summary["Paragraphs"], summary["Bytes"]) == (name, 3, len(UPLOAD_TEXT))
    assert summary["PartitionKey"] == "uploads" and summary["RowKey"] == name
    assert report["per_paragraph"] == [4, 2, 4]
    assert summary["InstanceId"] == report["instance_id"]

    # The activities' outputs are real storage, as another program reads it.
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    stored = blobs.get_blob_client("reports", f"{name}.json").download_blob().readall()
    assert json.loads(stored) == report
    table = TableServiceClient.from_connection_string(azurite.connection_string)
    row = table.get_table_client("UploadReports").get_entity("uploads", name)
    assert row["Words"] == 10

    status = workflows.status(report["instance_id"], "?showHistory=true")
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["report_blob"] == f"reports/{name}.json"
    names = scheduled(history(status))
    assert names == ["split_upload", "count_words", "count_words", "count_words",
                     "write_upload_report"]  # fmt: skip
    assert len(upload_instances(workflows, name)) == 1


def test_a_blob_written_by_another_program_starts_one_run_per_version(
    workflows: Workflows, azurite: Storage
) -> None:
    name = unique("direct") + ".md"
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    with contextlib.suppress(ResourceExistsError):
        blobs.create_container("uploads")
    blob = blobs.get_blob_client("uploads", name)
    blob.upload_blob(b"alpha beta\n\ngamma")
    wait_report(workflows, name, 3)
    time.sleep(2.0)  # several scans: the same version never starts a second run
    assert len(upload_instances(workflows, name)) == 1

    blob.upload_blob(b"alpha beta gamma delta", overwrite=True)
    answer = wait_report(workflows, name, 4)
    assert answer["summary"]["Paragraphs"] == 1
    assert len(upload_instances(workflows, name)) == 2


def test_uploads_refuse_bad_names_empty_large_and_binary_bodies(workflows: Workflows) -> None:
    def put(name: str, body: bytes) -> Reply:
        return http("PUT", workflows.url(f"/api/uploads/{name}"), raw=body)

    assert put("..bad", b"text").status == 400
    assert put("ok.txt", b"").status == 400
    assert put("ok.txt", b"\xff\xfe\x00").status == 400
    assert put("ok.txt", b"a " * (128 * 1024 + 1)).status == 413
    assert http("PUT", workflows.url("/api/uploads/x.txt"), headers={}, raw=b"x").status == 401
