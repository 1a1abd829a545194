"""Test app: a Service Bus output binding, which the local host does not support."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="send")
@app.service_bus_queue_output(
    arg_name="message", connection="ServiceBusConnection", queue_name="orders"
)
def send_order(req: func.HttpRequest, message: func.Out[str]) -> func.HttpResponse:
    message.set("order")
    return func.HttpResponse("sent")
