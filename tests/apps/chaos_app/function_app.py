"""The torture run's app: every orchestration pattern, each with an output the harness can
predict, and activities that leave a ledger line per execution (so re-runs can be counted).

Settings (environment):
- CHAOS_HUB: the task hub name (host.json reads it);
- CHAOS_LEDGER_DIR: where activities append `name key pid` lines, one file per process
  (unset: no ledger);
- CHAOS_DEPLOYMENT: "A" (default) or "B". Version B changes the `versioned` orchestrator's
  first step, as a redeployment with changed orchestrator code would;
- SOAK_MEMWATCH: a folder; each process then reports where its memory grows into it
  (tests/soak/memwatch.py).

Expected outputs (see tests/chaos/workload.py, which computes them):
- chain {"start": s, "n": n}: s + n (n `add_one` activities in sequence);
- fan {"n": n}: sum of i*i for i < n (n `square` activities in parallel);
- timer {"seconds": s}: "fired after {s}s" (a durable timer, then an activity);
- event {}: {"got": data} with the data the harness raised as event "Go";
- parent {"children": k}: [k+1 for ...] - k `chain` sub-orchestrations, ids "{id}:c{j}";
- retry {"failures": f}: "ok {key}" - `flaky` fails its first f executions, retried;
- tally {"steps": [...], "max"?: {key: n}}: {"ops": operations sent, "added": {key: adds}} -
  the steps drive the shared `counter` entities (signals, calls alone or in task_all, a
  rolled-back `boom`, echo activities); every value a call returns is checked against what
  this orchestration sent before it (its requests run in order) and against the counter's
  final value `max` (more means an operation ran twice): a "problems" list when one fails;
- bound {"n": n}: [sum of i*i for i < n, "0"] - n `store_square` activities write each square
  to a blob and a table row through output bindings (at least once: rows are upserted), then
  `sum_stored` reads the rows back through a table input and the first blob through a blob
  input; a row lost or counted twice changes the sum;
- versioned / stable: the changed-deployment test's pair.
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.functions as func

import orchestration as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

DEPLOYMENT = os.environ.get("CHAOS_DEPLOYMENT", "A")

if os.environ.get("SOAK_MEMWATCH"):
    from tests.soak.memwatch import start as _start_memwatch

    _start_memwatch(Path(os.environ["SOAK_MEMWATCH"]))


def _ledger(name: str, key: str) -> None:
    folder = os.environ.get("CHAOS_LEDGER_DIR")
    if not folder:
        return
    line = f"{name} {key} {os.getpid()}\n".encode()
    # One O_APPEND write per line: lines of several processes never interleave.
    fd = os.open(Path(folder) / f"ledger-{os.getpid()}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext) -> Any:
    data = context.get_input()
    value = data["start"]
    for step in range(data["n"]):
        value = yield context.call_activity(
            "add_one", {"k": f"{context.instance_id}:{step}", "v": value}
        )
    return value


@app.orchestration_trigger(context_name="context")
def fan(context: df.DurableOrchestrationContext) -> Any:
    n = context.get_input()["n"]
    tasks = [
        context.call_activity("square", {"k": f"{context.instance_id}:{i}", "v": i})
        for i in range(n)
    ]
    results = yield context.task_all(tasks)
    return sum(results)


@app.orchestration_trigger(context_name="context")
def timer(context: df.DurableOrchestrationContext) -> Any:
    seconds = context.get_input()["seconds"]
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=seconds))
    text = yield context.call_activity(
        "echo", {"k": f"{context.instance_id}:0", "v": f"fired after {seconds}s"}
    )
    return text


@app.orchestration_trigger(context_name="context")
def event(context: df.DurableOrchestrationContext) -> Any:
    data = yield context.wait_for_external_event("Go")
    echoed = yield context.call_activity("echo", {"k": f"{context.instance_id}:0", "v": data})
    return {"got": echoed}


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext) -> Any:
    children = context.get_input()["children"]
    results = yield context.task_all(
        [
            context.call_sub_orchestrator(
                "chain", {"start": j, "n": 1}, f"{context.instance_id}:c{j}"
            )
            for j in range(children)
        ]
    )
    return results


@app.orchestration_trigger(context_name="context")
def retry(context: df.DurableOrchestrationContext) -> Any:
    failures = context.get_input()["failures"]
    options = df.RetryOptions(first_retry_interval_in_milliseconds=300, max_number_of_attempts=8)
    result = yield context.call_activity_with_retry(
        "flaky", options, {"k": context.instance_id, "failures": failures}
    )
    return result


@app.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext) -> None:
    """A shared counter: `add` n returns the new value, `get` the value, `boom` changes the
    state and raises (the change must be rolled back)."""
    value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        value += int(context.get_input())
        context.set_state(value)
        context.set_result(value)
    elif operation == "get":
        context.set_result(value)
    elif operation == "boom":
        context.set_state(value + 1000)
        raise ValueError("boom: failing on purpose, the state change must be rolled back")
    else:
        raise ValueError(f"counter: unknown operation {operation!r}")


@app.orchestration_trigger(context_name="context")
def tally(context: df.DurableOrchestrationContext) -> Any:
    """Steps (see tests/chaos/workload.py): ["signal", key, n], ["call", [[key, n], ...]]
    (the calls in one task_all), ["get", key], ["boom", key], ["activity"]."""
    data = context.get_input()
    top: dict[str, int] | None = data.get("max")
    own: dict[str, int] = {}  # adds this orchestration sent, per counter
    seen: dict[str, tuple[int, int]] = {}  # per counter: the value last read, own adds then
    problems: list[str] = []
    ops = 0

    def observe(step: int, key: str, value: Any, mine: int) -> None:
        last, mine_then = seen.get(key, (0, 0))
        if not isinstance(value, int) or value < last + (mine - mine_then):
            problems.append(
                f"step {step}: {key} read {value!r}, below {last} (read before) + "
                f"{mine - mine_then} (own adds since)"
            )
        elif top is not None and value > top.get(key, 0):
            problems.append(f"step {step}: {key} read {value}, above its final {top.get(key)}")
        if isinstance(value, int):
            seen[key] = (value, mine)

    def target(key: str) -> df.EntityId:
        return df.EntityId("counter", key)

    for index, step in enumerate(data["steps"]):
        kind = step[0]
        if kind == "signal":
            _, key, amount = step
            context.signal_entity(target(key), "add", amount)
            own[key] = own.get(key, 0) + amount
            ops += 1
        elif kind == "call":
            sent: list[tuple[str, int]] = []
            tasks = []
            for key, amount in step[1]:
                tasks.append(context.call_entity(target(key), "add", amount))
                own[key] = own.get(key, 0) + amount
                sent.append((key, own[key]))
                ops += 1
            values = yield context.task_all(tasks)
            for (key, mine), value in zip(sent, values, strict=True):
                observe(index, key, value, mine)
        elif kind == "get":
            key = step[1]
            value = yield context.call_entity(target(key), "get")
            ops += 1
            observe(index, key, value, own.get(key, 0))
        elif kind == "boom":
            ops += 1
            try:
                yield context.call_entity(target(step[1]), "boom")
                problems.append(f"step {index}: boom on {step[1]} did not fail")
            except df.TaskFailedError:
                pass
        elif kind == "activity":
            yield context.call_activity(
                "echo", {"k": f"{context.instance_id}:e{index}", "v": index}
            )
    result: dict[str, Any] = {"ops": ops, "added": own}
    if problems:
        result["problems"] = problems
    return result


@app.orchestration_trigger(context_name="context")
def versioned(context: df.DurableOrchestrationContext) -> Any:
    key = context.instance_id
    if DEPLOYMENT == "B":
        # The changed code: its first step now calls another activity.
        first = yield context.call_activity("square", {"k": f"{key}:0", "v": 3})
    else:
        first = yield context.call_activity("add_one", {"k": f"{key}:0", "v": 1})
    data = yield context.wait_for_external_event("Go")
    return [first, data]


@app.orchestration_trigger(context_name="context")
def stable(context: df.DurableOrchestrationContext) -> Any:
    first = yield context.call_activity("add_one", {"k": f"{context.instance_id}:0", "v": 1})
    data = yield context.wait_for_external_event("Go")
    return [first, data]


@app.orchestration_trigger(context_name="context")
def slow_chain(context: df.DurableOrchestrationContext) -> Any:
    data = context.get_input()
    value = 0
    for step in range(data["n"]):
        value = yield context.call_activity(
            "slow", {"k": f"{context.instance_id}:{step}", "v": value, "ms": data["ms"]}
        )
    return value


@app.orchestration_trigger(context_name="context")
def bound(context: df.DurableOrchestrationContext) -> Any:
    key = context.instance_id
    n = context.get_input()["n"]
    yield context.task_all(
        [context.call_activity("store_square", {"k": f"{key}:{i}", "i": i}) for i in range(n)]
    )
    stored = yield context.call_activity("sum_stored", {"k": f"{key}:sum", "first": f"{key}:0"})
    return stored


STORAGE = "AzureWebJobsStorage"
BOUND_BLOBS = "chaos-bindings/%CHAOS_HUB%"
BOUND_TABLE = "%CHAOS_HUB%Bound"


@app.activity_trigger(input_name="data")
@app.blob_output(arg_name="blob", path=BOUND_BLOBS + "/{k}", connection=STORAGE)
@app.table_output(
    arg_name="row", table_name=BOUND_TABLE, partition_key="{instanceId}", row_key="{i}",
    connection=STORAGE,
)  # fmt: skip
def store_square(data: dict[str, Any], blob: func.Out[str], row: func.Out[str]) -> None:
    _ledger("store_square", data["k"])
    square = int(data["i"]) ** 2
    blob.set(str(square))
    row.set(json.dumps({"Square": square}))


@app.activity_trigger(input_name="data")
@app.table_input(
    arg_name="rows", table_name=BOUND_TABLE, partition_key="{instanceId}", connection=STORAGE
)
@app.blob_input(arg_name="first", path=BOUND_BLOBS + "/{first}", connection=STORAGE)
def sum_stored(data: dict[str, Any], rows: list[dict[str, Any]], first: str | None) -> Any:
    _ledger("sum_stored", data["k"])
    return [sum(int(r["Square"]) for r in rows), first]


@app.activity_trigger(input_name="data")
def add_one(data: dict[str, Any]) -> int:
    _ledger("add_one", data["k"])
    return int(data["v"]) + 1


@app.activity_trigger(input_name="data")
def square(data: dict[str, Any]) -> int:
    _ledger("square", data["k"])
    return int(data["v"]) ** 2


@app.activity_trigger(input_name="data")
def echo(data: dict[str, Any]) -> Any:
    _ledger("echo", data["k"])
    return data["v"]


@app.activity_trigger(input_name="data")
def slow(data: dict[str, Any]) -> int:
    time.sleep(data["ms"] / 1000)
    _ledger("slow", data["k"])
    return int(data["v"]) + 1


@app.activity_trigger(input_name="data")
def flaky(data: dict[str, Any]) -> str:
    """Fails its first `failures` executions for a key, counted across processes in the
    ledger folder (one byte appended per execution), so it is deterministic under retries."""
    _ledger("flaky", data["k"])
    folder = os.environ.get("CHAOS_LEDGER_DIR")
    if folder:
        path = Path(folder) / f"flaky-{data['k'].replace(':', '_').replace('/', '_')}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
        if path.stat().st_size <= int(data["failures"]):
            raise ConnectionError(f"flaky: failing execution {path.stat().st_size} on purpose")
    return f"ok {data['k']}"
