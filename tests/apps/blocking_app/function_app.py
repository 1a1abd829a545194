"""Orchestrators and an activity that block, beside ones that behave.

- `sleeper` calls `time.sleep(30)` in its code; `spinner` loops forever without yielding;
- `chain` calls `add_one` three times (a bystander that must not be slowed down);
- `async_blocker` calls `blocking_async`, an `async def` activity that sleeps 3 s with
  `time.sleep` (it blocks the loop: the engine must name it in the log).
"""

from __future__ import annotations

import time
from typing import Any

import azure.functions as func

import orchestration as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="health", auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok")


@app.orchestration_trigger(context_name="context")
def sleeper(context: df.DurableOrchestrationContext) -> Any:
    time.sleep(30)
    yield context.call_activity("add_one", 1)
    return "woke"


@app.orchestration_trigger(context_name="context")
def spinner(context: df.DurableOrchestrationContext) -> Any:
    first = yield context.call_activity("add_one", 1)
    while first:
        pass
    return first


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext) -> Any:
    value = context.get_input() or 0
    for _ in range(3):
        value = yield context.call_activity("add_one", value)
    return value


@app.orchestration_trigger(context_name="context")
def async_blocker(context: df.DurableOrchestrationContext) -> Any:
    value = yield context.call_activity("blocking_async", 1)
    return value


@app.activity_trigger(input_name="value")
def add_one(value: int) -> int:
    return value + 1


@app.activity_trigger(input_name="value")
async def blocking_async(value: int) -> int:
    time.sleep(3)
    return value


@app.entity_trigger(context_name="context")
def stuck(context: df.DurableEntityContext) -> None:
    if context.operation_name == "hang":
        while context.operation_name:
            pass
    if context.operation_name == "slow":
        time.sleep(3)  # an entity may wait on I/O (it is not replayed): within functionTimeout
    context.set_result("fine")


@app.orchestration_trigger(context_name="context")
def call_stuck(context: df.DurableOrchestrationContext) -> Any:
    try:
        yield context.call_entity(df.EntityId("stuck", context.instance_id), "hang")
    except df.TaskFailedError as error:
        fine = yield context.call_entity(df.EntityId("stuck", context.instance_id), "slow")
        return {"error": error.failure.error_type, "then": fine}
    return "returned"
