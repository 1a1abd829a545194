"""Test app: a blob output binding, which the local host does not support."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="save")
@app.blob_output(arg_name="blob", path="saved/item.txt", connection="AzureWebJobsStorage")
def save_blob(req: func.HttpRequest, blob: func.Out[str]) -> func.HttpResponse:
    blob.set("data")
    return func.HttpResponse("saved")
