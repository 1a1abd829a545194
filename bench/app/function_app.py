"""The bench's function app: the bench workflows on the durable engine, run by the local host.

`POST /api/run/{name}` starts a workflow and answers with its output when it completes
(Durable Functions' start-and-wait starter, with
`wait_for_completion_or_create_check_status_response`); the bench's callers use it, as a caller
wanting a result over HTTP would.

`GET /api/bench/stats` returns (and resets) the engine's storage call counters in this
process, so the bench can count storage calls per activity round trip inside the host;
`?listener=1` those of the host's queue listeners instead (their receives and deletes), and
`?entities=1` the entity worker's operations and batches since start.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import azure.functions as func
from bench_workflows import ACTIVITIES, ENTITIES, ORCHESTRATORS

import orchestration as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
for _name, _function in ORCHESTRATORS.items():
    app.orchestration_trigger(context_name="context", orchestration=_name)(_function)
for _name, (_function, _input) in ACTIVITIES.items():
    app.activity_trigger(input_name=_input, activity=_name)(_function)
for _name, _function in ENTITIES.items():
    app.entity_trigger(context_name="context", entity_name=_name)(_function)


@app.route(route="run/{name}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@app.durable_client_input(client_name="client")
async def run_and_wait(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Start `name` with the request's JSON body as input; 200 with its output when done."""
    instance_id = await client.start_new(req.route_params["name"], None, req.get_json())
    return await client.wait_for_completion_or_create_check_status_response(
        req, instance_id, timeout_in_milliseconds=120_000
    )


@app.route(route="bench/stats", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def bench_stats(req: func.HttpRequest) -> func.HttpResponse:
    """The engine's storage calls by operation since the last call (`?worker=1`: the
    orchestrator worker's counters since start instead)."""
    runtime = await app.engine.runtime()
    if req.params.get("worker"):
        stats = dataclasses.asdict(runtime.orchestrators.stats)
    elif req.params.get("entities"):
        entities = runtime.orchestrators.entities
        stats = {"operations": entities.operations, "batches": entities.batches}
    elif req.params.get("listener"):
        stats = {}
        for account in _listener_accounts():
            for operation, count in account.reset_stats().items():
                stats[operation] = stats.get(operation, 0) + count
    else:
        stats = runtime.hub.account.reset_stats()
    return func.HttpResponse(json.dumps(stats), mimetype="application/json")


def _listener_accounts() -> list[Any]:
    """The host's own storage accounts (its queue listeners' receives and deletes), found
    through the listeners' polling tasks: the app has no other handle on the host running it
    (and the host freezes its startup objects out of the garbage collector's sight)."""
    found: dict[int, Any] = {}
    for task in asyncio.all_tasks():
        if not task.get_name().startswith("queue-listener:"):
            continue
        frame = getattr(task.get_coro(), "cr_frame", None)
        listener = frame.f_locals.get("self") if frame is not None else None
        light = getattr(getattr(listener, "account", None), "_light_account", None)
        if light is not None:
            found[id(light)] = light
    return list(found.values())
