"""Starters that use the durable client's DF 1.7.0 methods, written as DF users write them.

Only the import line differs from an azure-functions-durable app.
"""

import json

import azure.functions as func

import orchestration as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="start/{name}/{instance_id}")
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client):
    body = req.get_body()
    instance_id = await client.start_new(
        req.route_params["name"], req.route_params["instance_id"], json.loads(body or "null")
    )
    return client.create_check_status_response(req, instance_id)


@app.route(route="links/{instance_id}")
@app.durable_client_input(client_name="client")
async def links(req: func.HttpRequest, client):
    instance_id = req.route_params["instance_id"]
    return func.HttpResponse(
        json.dumps(
            {
                "with_request": client.get_client_response_links(req, instance_id),
                "without_request": client.get_client_response_links(None, instance_id),
                "payload": client.create_http_management_payload(instance_id),
            }
        ),
        mimetype="application/json",
    )


@app.route(route="by_prefix/{prefix}")
@app.durable_client_input(client_name="client")
async def by_prefix(req: func.HttpRequest, client):
    statuses = req.params.get("status")
    found = await client.get_status_by(
        runtime_status=[df.OrchestrationRuntimeStatus(s) for s in statuses.split(",")]
        if statuses
        else None,
        instance_id_prefix=req.route_params["prefix"],
    )
    return func.HttpResponse(json.dumps(sorted(s.instance_id for s in found)))


@app.route(route="restart/{instance_id}")
@app.durable_client_input(client_name="client")
async def restart(req: func.HttpRequest, client):
    new_id = req.params.get("new", "true") == "true"
    try:
        restarted = await client.restart(req.route_params["instance_id"], new_id)
    except Exception as error:  # DF raises a plain Exception; ours a LookupError or a 409
        return func.HttpResponse(f"{type(error).__name__}: {error}", status_code=409)
    return func.HttpResponse(json.dumps(restarted))


@app.route(route="wait/{instance_id}")
@app.durable_client_input(client_name="client")
async def wait(req: func.HttpRequest, client):
    timeout = int(req.params.get("timeout", "5000"))
    interval = int(req.params.get("interval", "100"))
    try:
        return await client.wait_for_completion_or_create_check_status_response(
            req, req.route_params["instance_id"], timeout, interval
        )
    except Exception as error:
        return func.HttpResponse(str(error), status_code=400)


@app.route(route="terminate/{instance_id}")
@app.durable_client_input(client_name="client")
async def terminate(req: func.HttpRequest, client):
    await client.terminate(req.route_params["instance_id"], "enough")
    return func.HttpResponse(status_code=202)


@app.orchestration_trigger(context_name="context")
def echo(context: df.DurableOrchestrationContext):
    value = yield context.call_activity("identity", context.get_input())
    return value


@app.orchestration_trigger(context_name="context")
def wait_event(context: df.DurableOrchestrationContext):
    value = yield context.wait_for_external_event("Go")
    return value


@app.activity_trigger(input_name="value")
def identity(value):
    return value
