"""Test app: a custom input binding type served by a host extension (see greeting_ext.py)."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="greet/{name}")
@app.generic_input_binding(arg_name="greeter", type="greeting", prefix="Hi")
def greet(req: func.HttpRequest, greeter: str) -> func.HttpResponse:
    return func.HttpResponse(f"{greeter}, {req.route_params['name']}")
