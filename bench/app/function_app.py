"""The bench's function app: the bench workflows on the durable engine, run by the local host.

`POST /api/run/{name}` starts a workflow and answers with its output when it completes
(Durable Functions' start-and-wait starter, with
`wait_for_completion_or_create_check_status_response`); the bench's callers use it, as a caller
wanting a result over HTTP would.

`GET /api/bench/stats` returns (and resets) the engine's storage call counters in this
process, so the bench can count storage calls per activity round trip inside the host.
"""

from __future__ import annotations

import dataclasses
import json

import azure.functions as func
from bench_workflows import ACTIVITIES, ORCHESTRATORS

import orchestration as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
for _name, _function in ORCHESTRATORS.items():
    app.orchestration_trigger(context_name="context", orchestration=_name)(_function)
for _name, (_function, _input) in ACTIVITIES.items():
    app.activity_trigger(input_name=_input, activity=_name)(_function)


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
    else:
        stats = runtime.hub.account.reset_stats()
    return func.HttpResponse(json.dumps(stats), mimetype="application/json")
