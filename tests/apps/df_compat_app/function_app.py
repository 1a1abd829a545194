"""A Durable Functions app as users write it for azure-functions-durable.

The only change from such an app is the import line: `import orchestration as df`
instead of `import azure.durable_functions as df`. It defines its own starter route.
"""

import json
import logging

import azure.functions as func
from blueprint_part import bp

import orchestration as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(bp)


@app.route(route="orchestrators/{functionName}")
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client):
    body = req.get_body()
    payload = json.loads(body) if body else None
    instance_id = await client.start_new(req.route_params["functionName"], client_input=payload)
    logging.info("Started orchestration with ID = '%s'.", instance_id)
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def total_lengths(context: df.DurableOrchestrationContext):
    words = context.get_input()
    lengths = yield context.task_all([context.call_activity("measure", w) for w in words])
    summary = yield context.call_sub_orchestrator("describe", sum(lengths))
    return summary


@app.orchestration_trigger(context_name="context")
def describe(context: df.DurableOrchestrationContext):
    total = context.get_input()
    retry = df.RetryOptions(first_retry_interval_in_milliseconds=100, max_number_of_attempts=2)
    text = yield context.call_activity_with_retry("render", retry, total)
    return text


@app.activity_trigger(input_name="word")
def measure(word: str) -> int:
    return len(word)


@app.activity_trigger(input_name="total")
async def render(total: int) -> str:
    return f"{total} letters"


# Entities, as the Durable Functions Python docs write them.
@app.entity_trigger(context_name="context")
def Counter(context):
    current_value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        amount = context.get_input()
        current_value += amount
    elif operation == "reset":
        current_value = 0
    elif operation == "get":
        pass
    context.set_state(current_value)
    context.set_result(current_value)


@app.route(route="counters/{key}/{operation}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def signal_counter(req: func.HttpRequest, client):
    entity_id = df.EntityId("Counter", req.route_params["key"])
    body = req.get_body()
    operation_input = json.loads(body) if body else None
    await client.signal_entity(entity_id, req.route_params["operation"], operation_input)
    return func.HttpResponse(status_code=202)


@app.route(route="counters/{key}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def read_counter(req: func.HttpRequest, client):
    entity_id = df.EntityId("Counter", req.route_params["key"])
    response = await client.read_entity_state(entity_id)
    body = {"exists": response.entity_exists, "state": response.entity_state}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


@app.orchestration_trigger(context_name="context")
def counter_orchestrator(context: df.DurableOrchestrationContext):
    entityId = df.EntityId("Counter", context.get_input())
    context.signal_entity(entityId, "add", 3)
    state = yield context.call_entity(entityId, "get")
    return state
