"""The same two blueprints on a `DFApp` (DF's other blueprint shape), plus an orchestrator of
the app's own that calls both blueprints' activities."""

import sys
from pathlib import Path

import azure.functions as func

import orchestration as df

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "blueprint_app"))

from greetings import bp as greetings
from numbers_bp import bp as numbers

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(greetings)
app.register_blueprint(numbers)


@app.orchestration_trigger(context_name="context")
def both(context: df.DurableOrchestrationContext):
    square = yield context.call_activity("square", context.get_input())
    return (yield context.call_activity("say_hello", str(square)))
