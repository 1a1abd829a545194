"""Test app: one misconfigured storage binding, chosen by the BAD_CASE setting; the host must
refuse to start, naming the function and the binding."""

from __future__ import annotations

import os

import azure.functions as func

app = func.FunctionApp()
CASE = os.environ.get("BAD_CASE", "")

if CASE == "unknown_parameter":

    @app.blob_trigger(arg_name="blob", path="uploads/{name}", connection="AzureWebJobsStorage")
    @app.blob_output(arg_name="out", path="results/{nothing}.txt", connection="AzureWebJobsStorage")
    def copy_upload(blob: func.InputStream, out: func.Out[str]) -> None:
        out.set("never")

elif CASE == "bad_container":

    @app.route(route="save")
    @app.blob_output(arg_name="out", path="Not_A_Container/x.txt", connection="AzureWebJobsStorage")
    def save(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
        out.set("never")
        return func.HttpResponse("never")

elif CASE == "missing_connection":

    @app.route(route="entity")
    @app.table_input(arg_name="row", connection="NoSuchStorage", table_name="Items", row_key="1",
                     partition_key="p")  # fmt: skip
    def entity(req: func.HttpRequest, row: str) -> func.HttpResponse:
        return func.HttpResponse(row)

elif CASE == "bad_trigger_path":

    @app.blob_trigger(arg_name="blob", path="uploads/{name", connection="AzureWebJobsStorage")
    def broken(blob: func.InputStream) -> None:
        pass

elif CASE == "unsupported_trigger":

    @app.service_bus_queue_trigger(arg_name="msg", queue_name="orders", connection="ServiceBus")
    def on_order(msg: func.ServiceBusMessage) -> None:
        pass
