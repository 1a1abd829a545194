"""Test app: activities with blob, table and queue bindings, applied by the engine around each
run. Containers, the table and the queue come from settings, so each test uses its own; the
test writes host.json (localActivities on or off) next to a copy of this file."""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import azure.functions as func

import orchestration as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
STORAGE = "AzureWebJobsStorage"
ATTEMPTS: dict[str, int] = {}
"""Runs of `transform` per job in this process (the tests run one host process)."""


@app.orchestration_trigger(context_name="context")
def process_document(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Transform a blob (retried until it succeeds), then read back the row it wrote."""
    job = context.get_input()
    retry = df.RetryOptions(first_retry_interval_in_milliseconds=100, max_number_of_attempts=5)
    transformed = yield context.call_activity_with_retry("transform", retry, job)
    row = yield context.call_activity("lookup", {"target": job["target"]})
    return {"transform": transformed, "row": row}


@app.activity_trigger(input_name="job")
@app.blob_input(arg_name="source", path="%INBOX%/{source}", connection=STORAGE)
@app.blob_output(arg_name="copy", path="%OUTBOX%/{target}", connection=STORAGE)
@app.blob_output(
    arg_name="audit", path="%OUTBOX%/audit/{target}/{rand-guid}.txt", connection=STORAGE
)
@app.table_output(
    arg_name="row", table_name="%TABLE%", partition_key="{instanceId}", row_key="{target}",
    connection=STORAGE,
)  # fmt: skip
@app.queue_output(arg_name="done", queue_name="%DONE%", connection=STORAGE)
def transform(
    job: dict[str, Any],
    source: str | None,
    copy: func.Out[str],
    audit: func.Out[str],
    row: func.Out[str],
    done: func.Out[str],
) -> dict[str, Any]:
    """Upper-case `{source}` into `{target}`; fails its first `fail_times` attempts after
    setting every output (a failed attempt must write none of them)."""
    key = f"{job['source']}->{job['target']}"
    attempt = ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    text = (source or "").upper()
    copy.set(text)
    audit.set(f"attempt {attempt}")
    row.set(json.dumps({"Attempt": attempt, "Length": len(text), "Missing": source is None}))
    done.set(json.dumps({"target": job["target"], "attempt": attempt}))
    if attempt <= int(job.get("fail_times", 0)):
        raise RuntimeError(f"attempt {attempt} fails on purpose")
    return {"attempt": attempt, "length": len(text), "missing": source is None}


@app.activity_trigger(input_name="query")
@app.table_input(
    arg_name="row", table_name="%TABLE%", partition_key="{instanceId}", row_key="{target}",
    connection=STORAGE,
)  # fmt: skip
def lookup(query: dict[str, Any], row: dict[str, Any] | None) -> dict[str, Any] | None:
    """The row `transform` wrote for this instance, through a table input binding."""
    return row
