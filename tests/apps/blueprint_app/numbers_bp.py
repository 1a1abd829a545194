"""Fan-out/fan-in in a second blueprint, with the app's own `orchestrators/{functionName}`
starter (the engine's default one steps aside for it)."""

import json

import azure.functions as func

import orchestration as df

bp = df.Blueprint()


@bp.route(route="orchestrators/{functionName}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client):
    body = req.get_body()
    payload = json.loads(body) if body else None
    instance_id = await client.start_new(req.route_params["functionName"], client_input=payload)
    return client.create_check_status_response(req, instance_id)


@bp.orchestration_trigger(context_name="context")
def sum_of_squares(context: df.DurableOrchestrationContext):
    numbers = context.get_input()
    tasks = [context.call_activity("square", n) for n in numbers]
    squares = yield context.task_all(tasks)
    # An activity of the other blueprint: one engine runs both.
    greeting = yield context.call_activity("say_hello", str(sum(squares)))
    return {"squares": squares, "total": sum(squares), "greeting": greeting}


@bp.activity_trigger(input_name="n")
def square(n: int) -> int:
    return n * n
