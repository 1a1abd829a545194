"""DF's blueprint shape: a plain `func.FunctionApp` with durable blueprints registered on it.

As azure-functions-durable's blueprint sample writes it, with the import line of the blueprint
modules changed to `import orchestration as df`. Two blueprints: the engine's functions must
exist once, and an orchestrator of one may call an activity of the other.
"""

import azure.functions as func
from greetings import bp as greetings
from numbers_bp import bp as numbers

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(greetings)
app.register_functions(numbers)


@app.route(route="HttpTrigger")
def HttpTrigger(req: func.HttpRequest) -> func.HttpResponse:
    name = req.params.get("name") or "world"
    return func.HttpResponse(f"Hello, {name}. This HTTP triggered function executed successfully.")
