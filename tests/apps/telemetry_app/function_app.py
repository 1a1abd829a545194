"""A traced test app: the OpenTelemetry SDK with in-memory exporters, read over HTTP.

The spans and metrics this process recorded are served by `GET /api/test/spans` and
`GET /api/test/metrics`, so a test can gather one trace from several host processes.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import azure.functions as func
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import orchestration as df

resource = Resource.create({"service.name": "telemetry-test", "process.pid": os.getpid()})
exporter = InMemorySpanExporter()
provider = TracerProvider(resource=resource)
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
_tries: dict[str, int] = {}


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext) -> Any:
    x = context.get_input() or 0
    for _ in range(3):
        x = yield context.call_activity("add_one", x)
    return x


@app.orchestration_trigger(context_name="context")
def slow_chain(context: df.DurableOrchestrationContext) -> Any:
    """Four naps in a row: long enough to kill the host in the middle."""
    total = 0
    for seconds in context.get_input():
        total += yield context.call_activity("nap", seconds)
    return total


@app.orchestration_trigger(context_name="context")
def spread(context: df.DurableOrchestrationContext) -> Any:
    """A fan-out of naps that report the process that ran them."""
    count, seconds = context.get_input()
    pids = yield context.task_all([context.call_activity("nap_pid", seconds) for _ in range(count)])
    return sorted(set(pids))


@app.orchestration_trigger(context_name="context")
def parent_flow(context: df.DurableOrchestrationContext) -> Any:
    key = context.get_input()
    result = yield context.call_sub_orchestrator("child_flow", key)
    return {"child": result}


@app.orchestration_trigger(context_name="context")
def child_flow(context: df.DurableOrchestrationContext) -> Any:
    key = context.get_input()
    retry = df.RetryOptions(first_retry_interval_in_milliseconds=100, max_number_of_attempts=3)
    tries = yield context.call_activity_with_retry("flaky", retry, key)
    event = yield context.wait_for_external_event("Go")
    return {"tries": tries, "event": event}


@app.activity_trigger(input_name="value")
def add_one(value: int) -> int:
    return value + 1


@app.activity_trigger(input_name="seconds")
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.activity_trigger(input_name="seconds")
def nap_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


@app.activity_trigger(input_name="key")
def flaky(key: str) -> int:
    """Fails its first two tries for each key (in this process)."""
    _tries[key] = _tries.get(key, 0) + 1
    if _tries[key] < 3:
        raise RuntimeError(f"try {_tries[key]} of {key} fails")
    return _tries[key]


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    instance_id = await client.start_new(
        req.route_params["name"], None, json.loads(body) if body else None
    )
    return func.HttpResponse(json.dumps({"id": instance_id}), mimetype="application/json")


def _span(span: Any) -> dict[str, Any]:
    context = span.get_span_context()
    parent = span.parent
    return {
        "name": span.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_id": f"{parent.span_id:016x}" if parent is not None else None,
        "kind": span.kind.name,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
        "start": span.start_time,
        "end": span.end_time,
        "pid": os.getpid(),
    }


@app.route(route="test/spans", methods=["GET"])
def spans(req: func.HttpRequest) -> func.HttpResponse:
    found = [_span(s) for s in exporter.get_finished_spans()]
    return func.HttpResponse(json.dumps(found), mimetype="application/json")


@app.route(route="test/metrics", methods=["GET"])
def metric_points(req: func.HttpRequest) -> func.HttpResponse:
    data = reader.get_metrics_data()
    return func.HttpResponse(data.to_json() if data else "{}", mimetype="application/json")
