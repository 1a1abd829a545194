"""A durable test app: small orchestrators exercising every engine path."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import azure.functions as func

import orchestration as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext) -> Any:
    x = context.get_input() or 0
    for _ in range(3):
        x = yield context.call_activity("add_one", x)
    return x


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext) -> Any:
    n = context.get_input()
    results = yield context.task_all([context.call_activity("add_one", i) for i in range(n)])
    return sum(results)


@app.orchestration_trigger(context_name="context")
def wait_timer(context: df.DurableOrchestrationContext) -> Any:
    seconds = context.get_input()
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=seconds))
    return "fired"


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext) -> Any:
    event = context.wait_for_external_event("Approval")
    timeout = context.create_timer(context.current_utc_datetime + timedelta(seconds=30))
    winner = yield context.task_any([event, timeout])
    if winner is event:
        timeout.cancel()
        return {"approved": event.result}
    return {"approved": None}


@app.activity_trigger(input_name="value")
def add_one(value: int) -> int:
    return value + 1


@app.activity_trigger(input_name="value")
async def echo_async(value: Any) -> Any:
    return value
