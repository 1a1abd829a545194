"""A blueprint, registered by function_app.py, as Durable Functions apps split theirs."""

import azure.functions as func

import orchestration as df

bp = df.Blueprint()


@bp.route(route="greet")
@bp.durable_client_input(client_name="client")
async def start_greeting(req: func.HttpRequest, client):
    instance_id = await client.start_new("greeting_chain")
    return client.create_check_status_response(req, instance_id)


@bp.orchestration_trigger(context_name="context")
def greeting_chain(context: df.DurableOrchestrationContext):
    first = yield context.call_activity("greet", "Oslo")
    second = yield context.call_activity("greet", "Lima")
    return [first, second]


@bp.activity_trigger(input_name="town")
def greet(town: str) -> str:
    return f"Hi {town}"
