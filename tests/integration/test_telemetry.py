"""One trace per orchestration, across processes, hosts and restarts (issue 18).

Each test runs the traced test app (the OpenTelemetry SDK with in-memory exporters) on the
local host against the session Azurite, gathers the spans every host process recorded over
HTTP, and checks the span tree of one trace: names, parents, attributes, and that no span
is written twice (replays add none).
"""

from __future__ import annotations

import base64
import json
import shutil
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from orchestration.storage.names import HubNames
from tests.conftest import APPS, HostLauncher, HostProcess, Storage, wait_until

pytestmark = pytest.mark.integration

APP = APPS / "telemetry_app"
TERMINAL = {"Completed", "Failed", "Terminated"}
Span = dict[str, Any]


def call(host: HostProcess, method: str, path: str, body: Any = None, headers: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(host.url(path), data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
    return json.loads(text) if text else None


def start(host: HostProcess, name: str, body: Any, headers: Any = None) -> str:
    return str(call(host, "POST", f"/api/start/{name}", body, headers)["id"])


def status(host: HostProcess, instance_id: str) -> dict[str, Any]:
    return dict(call(host, "GET", f"/api/durabletask/instances/{instance_id}"))


def finished(host: HostProcess, instance_id: str, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        found = status(host, instance_id)
        return found if found["runtimeStatus"] in TERMINAL else None

    result: dict[str, Any] = wait_until(done, timeout, 0.1, f"{instance_id} to finish")
    return result


def spans_of(*hosts: HostProcess) -> list[Span]:
    found: list[Span] = []
    for host in hosts:
        found += call(host, "GET", "/api/test/spans")
    return found


def trace_of(spans: list[Span], trace_id: str) -> list[Span]:
    return [s for s in spans if s["trace_id"] == trace_id]


def wait_for_trace(fetch: Callable[[], list[Span]], trace_id: str, name: str) -> list[Span]:
    """The trace's spans once the span `name` is among them (spans end as work ends)."""

    def complete() -> list[Span] | None:
        found = trace_of(fetch(), trace_id)
        return found if any(s["name"] == name for s in found) else None

    result: list[Span] = wait_until(complete, 10, 0.1, f"span {name}")
    return result


def one(spans: list[Span], name: str, **attributes: Any) -> Span:
    matching = [
        s
        for s in spans
        if s["name"] == name and all(s["attributes"].get(k) == v for k, v in attributes.items())
    ]
    assert len(matching) == 1, (name, attributes, [s["name"] for s in spans])
    return matching[0]


def orchestration_span(spans: list[Span], instance_id: str, timeout: float = 10) -> Span:
    """The execution's span (written when it ended; a host may still be exporting)."""
    found = [
        s
        for s in spans
        if s["attributes"].get("durabletask.type") == "orchestration"
        and s["name"].startswith("orchestration:")
        and s["attributes"].get("durabletask.task.instance_id") == instance_id
    ]
    assert len(found) == 1, [s["name"] for s in spans]
    return found[0]


def check_no_duplicates(spans: list[Span]) -> None:
    ids = Counter(s["span_id"] for s in spans)
    assert [i for i, n in ids.items() if n > 1] == []


def check_steps(spans: list[Span], orchestration: Span) -> list[Span]:
    """The execution's step spans: children of its span, one per committed step, in order."""
    steps = [
        s
        for s in spans
        if s["attributes"].get("durabletask.type") == "orchestration_step"
        and s["attributes"].get("durabletask.task.execution_id")
        == orchestration["attributes"]["durabletask.task.execution_id"]
    ]
    assert steps, "no step spans"
    assert all(s["parent_id"] == orchestration["span_id"] for s in steps)
    numbers = sorted(s["attributes"]["durabletask.step"] for s in steps)
    assert numbers == list(range(len(numbers))), numbers  # none twice, none replayed
    return steps


def app_copy(tmp_path: Path, durable: dict[str, Any], queues: dict[str, Any] | None = None) -> Path:
    """The test app with host.json's durableTask (and queues) settings changed."""
    target = tmp_path / "app"
    shutil.copytree(APP, target, ignore=shutil.ignore_patterns("__pycache__"))
    host_json = json.loads((target / "host.json").read_text())
    host_json["extensions"]["durableTask"].update(durable)
    host_json["extensions"]["queues"].update(queues or {})
    (target / "host.json").write_text(json.dumps(host_json))
    return target


def hub_env() -> dict[str, str]:
    return {
        "TELEMETRY_TEST_HUB": f"Tel{uuid.uuid4().hex[:12]}",
        "ORCHESTRATION_HOST_LOG_FORMAT": "json",
    }


def test_chain_over_http_is_one_trace_under_the_callers_traceparent(
    start_host: HostLauncher,
) -> None:
    host = start_host(APP, hub_env())
    caller_trace, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    traceparent = f"00-{caller_trace}-{caller_span}-01"
    instance_id = start(host, "chain", 1, {"traceparent": traceparent})
    assert finished(host, instance_id)["output"] == 4

    spans = wait_for_trace(lambda: spans_of(host), caller_trace, "orchestration:chain")
    check_no_duplicates(spans)
    server = one(spans, "POST /api/start/{name}")
    assert server["parent_id"] == caller_span and server["kind"] == "SERVER"
    created = one(spans, "create_orchestration:chain")
    assert created["parent_id"] == server["span_id"] and created["kind"] == "PRODUCER"
    assert created["attributes"]["durabletask.task.instance_id"] == instance_id
    orchestration = orchestration_span(spans, instance_id)
    assert orchestration["parent_id"] == created["span_id"]
    assert orchestration["kind"] == "SERVER" and orchestration["status"] == "UNSET"
    assert orchestration["attributes"]["durabletask.runtime_status"] == "Completed"
    assert orchestration["attributes"]["durabletask.task.name"] == "chain"
    activities = [s for s in spans if s["name"] == "activity:add_one"]
    assert len(activities) == 3
    assert {s["parent_id"] for s in activities} == {orchestration["span_id"]}
    assert sorted(s["attributes"]["durabletask.task.task_id"] for s in activities) == [0, 1, 2]
    for activity in activities:
        assert activity["attributes"]["durabletask.task.instance_id"] == instance_id
        assert activity["attributes"]["durabletask.task.attempt"] == 1
        assert activity["attributes"]["durabletask.task.outcome"] == "completed"
        # The orchestration's span covers its work, though it was written at the end.
        assert (
            orchestration["start"] <= activity["start"] <= activity["end"] <= orchestration["end"]
        )
    check_steps(spans, orchestration)

    # Log lines of the instance carry its trace id.
    lines = [json.loads(line) for line in host.log().splitlines() if line.startswith("{")]
    traced = [
        line for line in lines if line.get("instance_id") == instance_id and "trace_id" in line
    ]
    assert traced and {line["trace_id"] for line in traced} == {caller_trace}

    # Metrics: the instance was counted, its activities timed, storage calls counted.
    data = call(host, "GET", "/api/test/metrics")
    names = {
        metric["name"]: metric
        for resource in data["resource_metrics"]
        for scope in resource["scope_metrics"]
        for metric in scope["metrics"]
    }
    started = names["durabletask.orchestration.started"]["data"]["data_points"]
    assert any(
        p["attributes"] == {"durabletask.task.name": "chain"} and p["value"] >= 1 for p in started
    )
    finished_points = names["durabletask.orchestration.finished"]["data"]["data_points"]
    assert any(
        p["attributes"].get("durabletask.runtime_status") == "Completed" for p in finished_points
    )
    durations = names["durabletask.activity.duration"]["data"]["data_points"]
    assert (
        sum(p["count"] for p in durations if p["attributes"]["durabletask.task.name"] == "add_one")
        >= 3
    )
    calls = names["durabletask.storage.calls"]["data"]["data_points"]
    assert sum(p["value"] for p in calls) > 0
    kinds = {
        p["attributes"]["kind"] for p in names["durabletask.worker.events"]["data"]["data_points"]
    }
    assert {"steps", "local_activities", "cache_hits"} <= kinds


def test_queue_message_start_takes_the_producers_traceparent(
    start_host: HostLauncher, azurite: Storage
) -> None:
    env = hub_env()
    host = start_host(APP, env)
    names = HubNames(env["TELEMETRY_TEST_HUB"])
    queue = QueueClient.from_connection_string(azurite.connection_string, names.starts_queue)
    caller_trace, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    instance_id = f"q-{uuid.uuid4().hex[:8]}"
    message = {"name": "chain", "input": 5, "instanceId": instance_id}
    traceparent = f"00-{caller_trace}-{caller_span}-01"
    queue.send_message(encoded({**message, "traceparent": traceparent}))
    # A traceparent that is not one is refused like any other bad field.
    queue.send_message(encoded({**message, "instanceId": "q-bad", "traceparent": "00-zz"}))
    wait_until(lambda: status_or_none(host, instance_id), 30, 0.2, "the start")
    assert finished(host, instance_id)["output"] == 8
    spans = wait_for_trace(lambda: spans_of(host), caller_trace, "orchestration:chain")
    check_no_duplicates(spans)
    created = one(spans, "create_orchestration:chain")
    assert created["parent_id"] == caller_span
    orchestration = orchestration_span(spans, instance_id)
    assert orchestration["parent_id"] == created["span_id"]
    activities = [s for s in spans if s["name"] == "activity:add_one"]
    assert len(activities) == 3
    assert {s["parent_id"] for s in activities} == {orchestration["span_id"]}
    check_steps(spans, orchestration)
    assert status_or_none(host, "q-bad") is None
    poison = QueueClient.from_connection_string(
        azurite.connection_string, f"{names.starts_queue}-poison"
    )
    wait_until(lambda: poison.get_queue_properties().approximate_message_count >= 1, 20, 0.2)


def encoded(message: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(message).encode()).decode()


def status_or_none(host: HostProcess, instance_id: str) -> dict[str, Any] | None:
    try:
        return status(host, instance_id)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def test_one_trace_across_a_host_killed_mid_orchestration(
    start_host: HostLauncher, tmp_path: Path
) -> None:
    # Activities through the work-item queue, so the killed host's one comes back (1 s lease).
    app = app_copy(tmp_path, {"localActivities": False})
    env = hub_env()
    first = start_host(app, env)
    instance_id = start(first, "slow_chain", [0.2, 1.5, 0.2, 0.2])
    wait_until(
        lambda: any(
            e["EventType"] == "TaskCompleted"
            for e in call(
                first, "GET", f"/api/durabletask/instances/{instance_id}?showHistory=true"
            )["historyEvents"]
        ),
        30,
        0.05,
        "the first nap",
    )
    before = spans_of(first)
    first.process.kill()  # no clean stop: spans in flight are lost, none is written twice
    first.stop()
    second = start_host(app, env)
    assert finished(second, instance_id)["output"] == pytest.approx(2.1)
    created = one(before, "create_orchestration:slow_chain")
    trace_id = created["trace_id"]
    spans = wait_for_trace(lambda: before + spans_of(second), trace_id, "orchestration:slow_chain")
    check_no_duplicates(spans)
    orchestration = orchestration_span(spans, instance_id)
    assert orchestration["parent_id"] == created["span_id"]
    assert orchestration["pid"] == second.process.pid
    naps = [s for s in spans if s["name"] == "activity:nap"]
    assert {s["parent_id"] for s in naps} == {orchestration["span_id"]}
    # Every nap ran to completion once at least; the one the kill cut short ran again.
    assert {s["attributes"]["durabletask.task.task_id"] for s in naps} == {0, 1, 2, 3}
    assert {s["pid"] for s in naps} == {first.process.pid, second.process.pid}
    assert all(s["attributes"]["durabletask.activity.where"] == "queued" for s in naps)
    # The new host replayed the history the old one wrote: no step twice.
    steps = check_steps(spans, orchestration)
    assert {s["pid"] for s in steps} == {first.process.pid, second.process.pid}


def test_two_hosts_share_a_fan_out_in_one_trace(start_host: HostLauncher, tmp_path: Path) -> None:
    app = app_copy(tmp_path, {"localActivities": False}, {"batchSize": 1, "newBatchThreshold": 0})
    env = hub_env()
    one_host = start_host(app, env)
    other_host = start_host(app, env)
    instance_id = start(one_host, "spread", [16, 0.3])
    result = finished(one_host, instance_id)
    assert result["runtimeStatus"] == "Completed"
    assert len(result["output"]) == 2, "both hosts ran naps"
    created = one(spans_of(one_host), "create_orchestration:spread")
    trace_id = created["trace_id"]

    def gathered() -> list[Span] | None:
        found = trace_of(spans_of(one_host, other_host), trace_id)
        done = any(s["name"] == "orchestration:spread" for s in found)
        return found if done and sum(s["name"] == "activity:nap_pid" for s in found) >= 16 else None

    spans = wait_until(gathered, 10, message="the fan-out's spans")
    check_no_duplicates(spans)
    orchestration = orchestration_span(spans, instance_id)
    naps = [s for s in spans if s["name"] == "activity:nap_pid"]
    assert {s["parent_id"] for s in naps} == {orchestration["span_id"]}
    assert {s["pid"] for s in naps} == set(result["output"])
    assert len({s["attributes"]["durabletask.task.task_id"] for s in naps}) == 16
    check_steps(spans, orchestration)


def test_retried_activity_and_sub_orchestration_nest_in_one_trace(
    start_host: HostLauncher,
) -> None:
    host = start_host(APP, hub_env())
    key = uuid.uuid4().hex[:8]
    instance_id = start(host, "parent_flow", key)
    child_id = wait_until(
        lambda: next(
            (
                s["attributes"]["durabletask.task.instance_id"]
                for s in spans_of(host)
                if s["name"] == "activity:flaky"
                and s["attributes"]["durabletask.task.outcome"] == "completed"
            ),
            None,
        ),
        30,
        0.1,
        "the third try",
    )
    call(host, "POST", f"/api/durabletask/instances/{child_id}/raiseEvent/Go", {"go": True})
    result = finished(host, instance_id)
    assert result["output"] == {"child": {"tries": 3, "event": {"go": True}}}
    created = one(spans_of(host), "create_orchestration:parent_flow")
    trace_id = created["trace_id"]
    spans = wait_for_trace(lambda: spans_of(host), trace_id, "orchestration:parent_flow")
    check_no_duplicates(spans)
    parent = orchestration_span(spans, instance_id)
    child = orchestration_span(spans, child_id)
    assert parent["parent_id"] == created["span_id"]
    assert child["parent_id"] == parent["span_id"] and child["name"] == "orchestration:child_flow"
    assert parent["start"] <= child["start"] and child["end"] <= parent["end"]
    tries = sorted(
        (s for s in spans if s["name"] == "activity:flaky"),
        key=lambda s: s["attributes"]["durabletask.task.attempt"],
    )
    assert [s["attributes"]["durabletask.task.attempt"] for s in tries] == [1, 2, 3]
    assert {s["parent_id"] for s in tries} == {child["span_id"]}
    assert [s["status"] for s in tries] == ["ERROR", "ERROR", "UNSET"]
    assert [s["attributes"]["durabletask.task.outcome"] for s in tries] == [
        "failed",
        "failed",
        "completed",
    ]
    assert tries[0]["events"][0]["name"] == "exception"
    assert tries[0]["events"][0]["attributes"]["exception.type"] == "RuntimeError"
    # Retry waits are durable timers; the external event shows on the step that took it.
    child_steps = check_steps(spans, child)
    events = [e["name"] for s in child_steps for e in s["events"]]
    assert events.count("timer.created") == 2 and events.count("timer.fired") == 2
    assert events.count("event.raised") == 1
    parent_steps = check_steps(spans, parent)
    assert "suborchestration.created" in [e["name"] for s in parent_steps for e in s["events"]]


def test_one_setting_prints_spans_on_the_local_hosts_console(start_host: HostLauncher) -> None:
    # An app that configures nothing: the host sets the SDK up from the OTEL_* settings.
    env = {
        "DURABLE_TEST_HUB": f"Con{uuid.uuid4().hex[:12]}",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_SERVICE_NAME": "console-check",
    }
    host = start_host(APPS / "durable_app", env)
    assert "OpenTelemetry traces: console" in host.log()
    reply = call(host, "POST", "/api/orchestrators/chain", 2)
    instance_id = reply["id"]
    assert finished(host, instance_id)["output"] == 5
    wait_until(lambda: '"name": "orchestration:chain"' in host.log(), 10, 0.1, "the span")
    log = host.log()
    assert '"name": "activity:add_one"' in log and '"service.name": "console-check"' in log
    assert f'"durabletask.task.instance_id": "{instance_id}"' in log


def test_an_exporter_the_host_cannot_set_up_stops_it_with_why(start_host: HostLauncher) -> None:
    env = {"DURABLE_TEST_HUB": f"Bad{uuid.uuid4().hex[:12]}", "OTEL_TRACES_EXPORTER": "zipkin"}
    host = start_host(APPS / "durable_app", env, wait=False)
    assert host.wait_exit(60) != 0
    assert "OTEL_TRACES_EXPORTER: unknown exporter 'zipkin'" in host.log()
