"""Custom classes as inputs and outputs, as the Durable Functions docs write them.

Each boundary checks what arrived is the class itself, not a dict: the orchestration fails
with the type it got otherwise.
"""

import json

import azure.functions as func
from shop import Approval, Order, Receipt

import orchestration as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def must_be(value, cls):
    if not isinstance(value, cls):
        raise TypeError(f"expected {cls.__name__}, got {type(value).__name__}: {value!r}")
    return value


@app.route(route="checkout")
@app.durable_client_input(client_name="client")
async def start_checkout(req: func.HttpRequest, client):
    orders = [Order(o["sku"], o["qty"]) for o in json.loads(req.get_body())]
    instance_id = await client.start_new("checkout", client_input=orders)
    return client.create_check_status_response(req, instance_id)


@app.route(route="checkout/{id}/approve/{who}")
@app.durable_client_input(client_name="client")
async def approve(req: func.HttpRequest, client):
    await client.raise_event(req.route_params["id"], "approve", Approval(req.route_params["who"]))
    return func.HttpResponse(status_code=202)


@app.orchestration_trigger(context_name="context")
def checkout(context: df.DurableOrchestrationContext):
    orders = [must_be(o, Order) for o in context.get_input()]
    cart = df.EntityId("cart", context.instance_id)
    for order in orders:
        yield context.call_entity(cart, "add", order)
    held = yield context.call_entity(cart, "get")
    [must_be(o, Order) for o in held]
    priced = yield context.task_all([context.call_activity("price", o) for o in orders])
    receipt = yield context.call_sub_orchestrator("total", [must_be(r, Receipt) for r in priced])
    must_be(receipt, Receipt)
    context.set_custom_status(Approval("waiting"))
    approval = yield context.wait_for_external_event("approve")
    receipt.approved_by = must_be(approval, Approval).who
    return receipt


@app.orchestration_trigger(context_name="context")
def total(context: df.DurableOrchestrationContext):
    receipts = [must_be(r, Receipt) for r in context.get_input()]
    lines = [line for r in receipts for line in r.lines]
    return Receipt(lines, sum(r.total for r in receipts))
    yield  # a generator, as orchestrators are


@app.activity_trigger(input_name="order")
def price(order: Order) -> Receipt:
    must_be(order, Order)
    return Receipt([f"{order.qty} x {order.sku}"], order.qty * 10)


@app.entity_trigger(context_name="context")
def cart(context: df.DurableEntityContext):
    items = context.get_state(list)
    if context.operation_name == "add":
        items.append(must_be(context.get_input(), Order))
        context.set_state(items)
    [must_be(o, Order) for o in items]
    context.set_result(items)
