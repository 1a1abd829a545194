"""The management API's test app: instances that wait, finish, fail once, or run long.

Function keys guard its HTTP functions (the DFApp default), so the management API needs one.
`anon_start` is an anonymous starter of its own: its check-status URLs are instance links.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import azure.functions as func

import orchestration as df

app = df.DFApp()
_attempts: dict[str, int] = {}


@app.route(route="anon_start/{name}", auth_level=func.AuthLevel.ANONYMOUS)
@app.durable_client_input(client_name="client")
async def anon_start(req: func.HttpRequest, client: Any) -> func.HttpResponse:
    instance_id = await client.start_new(req.route_params["name"], None, None)
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def echo(context: df.DurableOrchestrationContext) -> Any:
    value = yield context.call_activity("identity", context.get_input())
    return value


@app.orchestration_trigger(context_name="context")
def wait_event(context: df.DurableOrchestrationContext) -> Any:
    context.set_custom_status("waiting")
    data = yield context.wait_for_external_event("Go")
    return {"got": data}


@app.orchestration_trigger(context_name="context")
def sleepy(context: df.DurableOrchestrationContext) -> Any:
    yield context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    return "woke"


@app.orchestration_trigger(context_name="context")
def fail_once(context: df.DurableOrchestrationContext) -> Any:
    value = yield context.call_activity("flaky", context.instance_id)
    return value


@app.activity_trigger(input_name="value")
def identity(value: Any) -> Any:
    return value


@app.activity_trigger(input_name="key")
def flaky(key: str) -> str:
    _attempts[key] = _attempts.get(key, 0) + 1
    if _attempts[key] == 1:
        raise RuntimeError("first attempt fails")
    return f"ok after {_attempts[key]}"


@app.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        value += int(context.get_input() or 0)
    context.set_state(value)
    context.set_result(value)
