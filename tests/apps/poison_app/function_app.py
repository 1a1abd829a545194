"""Activities that crash their worker process, or never finish: poison handling."""

import os

import azure.functions as func

import orchestration as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def crashing(context: df.DurableOrchestrationContext):
    result = yield context.call_activity("crash_worker", context.get_input())
    return result


@app.orchestration_trigger(context_name="context")
def survivor(context: df.DurableOrchestrationContext):
    try:
        yield context.call_activity("crash_worker", None)
    except df.TaskFailedError as error:
        return {"caught": error.error_type}
    return {"caught": None}


@app.activity_trigger(input_name="value")
def crash_worker(value: object) -> None:
    os._exit(3)
