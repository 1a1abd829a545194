"""A shape that cannot work: a starter whose durable client names another app's task hub.
The host must refuse it at start-up, saying what to write instead, not answer 500 later."""

import azure.functions as func

import orchestration as df

bp = df.Blueprint()


@bp.route(route="start")
@bp.durable_client_input(client_name="client", task_hub="SomeOtherAppsHub")
async def start(req: func.HttpRequest, client):
    instance_id = await client.start_new("hello")
    return client.create_check_status_response(req, instance_id)


@bp.orchestration_trigger(context_name="context")
def hello(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("hi", "there"))


@bp.activity_trigger(input_name="name")
def hi(name: str) -> str:
    return f"hi {name}"


app = func.FunctionApp()
app.register_functions(bp)
