"""Test app: a route under admin/, which the Functions host reserves."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="admin/reset")
def reset(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("reset")
