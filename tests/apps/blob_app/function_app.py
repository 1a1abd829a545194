"""Test app: blob triggers, blob and table input/output bindings, binding expressions from
HTTP routes, query strings, queue messages and blob paths. Containers, tables and queues
come from settings, so each test uses its own."""

from __future__ import annotations

import json
import logging
import os
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
STORAGE = "AzureWebJobsStorage"


# Blob triggers


@app.blob_trigger(arg_name="blob", path="%UPLOADS%/{name}", connection=STORAGE)
@app.blob_output(
    arg_name="record", path="%RESULTS%/runs/{name}/{rand-guid}.json", connection=STORAGE
)
def on_upload(blob: func.InputStream, record: func.Out[str]) -> None:
    """One record per run: what the trigger gave, and who ran it."""
    record.set(
        json.dumps(
            {
                "name": blob.name,
                "length": blob.length,
                "uri": blob.uri,
                "text": blob.read().decode(),
                "pid": os.getpid(),
            }
        )
    )


@app.blob_trigger(arg_name="data", path="%CSV%/{category}/{name}.csv", connection=STORAGE)
@app.blob_output(
    arg_name="copy", path="%RESULTS%/csv/{category}/{name}-{rand-guid}.bin", connection=STORAGE
)
@app.table_output(
    arg_name="row",
    connection=STORAGE,
    table_name="%TABLE%",
    partition_key="{category}",
    row_key="{rand-guid}",
)
def on_csv(data: bytes, copy: func.Out[bytes], row: func.Out[str]) -> None:
    """Path parameters into an output blob path and a table row; {rand-guid} in both."""
    copy.set(data)
    row.set(json.dumps({"Size": len(data)}))


@app.blob_trigger(arg_name="blob", path="%BROKEN%/{name}", connection=STORAGE)
def always_fails(blob: func.InputStream) -> None:
    raise ValueError(f"cannot handle {blob.name}")


@app.blob_trigger(arg_name="text", path="%SLOW%/{name}", connection=STORAGE)
@app.blob_output(arg_name="done", path="%RESULTS%/slow/{name}/{rand-guid}", connection=STORAGE)
def slow(text: str, done: func.Out[str]) -> None:
    logging.info("slow started on %s", text)
    time.sleep(float(os.environ.get("SLOW_SECONDS", "0")))
    done.set(str(os.getpid()))


# Blob input and output from HTTP


@app.route(route="files/{name}", methods=["GET"])
@app.blob_input(arg_name="doc", path="%DOCS%/{name}", connection=STORAGE)
def read_file(req: func.HttpRequest, doc: str) -> func.HttpResponse:
    if doc is None:
        return func.HttpResponse("missing", status_code=404)
    return func.HttpResponse(doc)


@app.route(route="streams/{name}", methods=["GET"])
@app.blob_input(arg_name="doc", path="%DOCS%/{name}", connection=STORAGE)
def read_stream(req: func.HttpRequest, doc: func.InputStream) -> func.HttpResponse:
    if doc is None:
        return func.HttpResponse("missing", status_code=404)
    document = {"name": doc.name, "length": doc.length, "uri": doc.uri, "data": doc.read().hex()}
    return func.HttpResponse(json.dumps(document), mimetype="application/json")


@app.route(route="lookup", methods=["GET"])
@app.blob_input(
    arg_name="doc", path="%DOCS%/{file}", connection=STORAGE, data_type=func.DataType.BINARY
)
def read_by_query(req: func.HttpRequest, doc: bytes) -> func.HttpResponse:
    if doc is None:
        return func.HttpResponse("missing", status_code=404)
    return func.HttpResponse(doc, mimetype="application/octet-stream")


@app.route(route="write/{name}", methods=["POST"])
@app.blob_output(arg_name="doc", path="%DOCS%/{name}", connection=STORAGE)
def write_text(req: func.HttpRequest, doc: func.Out[str]) -> func.HttpResponse:
    doc.set(req.get_body().decode())
    return func.HttpResponse("written", status_code=201)


@app.route(route="write-bytes/{name}", methods=["POST"])
@app.blob_output(arg_name="doc", path="%DOCS%/{name}", connection=STORAGE)
def write_bytes(req: func.HttpRequest, doc: func.Out[bytes]) -> func.HttpResponse:
    doc.set(req.get_body())
    return func.HttpResponse("written", status_code=201)


@app.route(route="upload/{name}", methods=["POST"])
@app.blob_output(arg_name="blob", path="%UPLOADS%/{name}", connection=STORAGE)
def upload(req: func.HttpRequest, blob: func.Out[bytes]) -> func.HttpResponse:
    """A blob output into a container a blob trigger of this app watches."""
    blob.set(req.get_body())
    return func.HttpResponse("uploaded", status_code=201)


# Blob input and $return output from a queue message


@app.queue_trigger(arg_name="msg", queue_name="%JOBS%", connection=STORAGE)
@app.blob_input(arg_name="source", path="%DOCS%/{doc}", connection=STORAGE)
@app.blob_output(arg_name="$return", path="%RESULTS%/copies/{doc}-{Id}.txt", connection=STORAGE)
def copy_doc(msg: func.QueueMessage, source: str) -> str:
    return "missing" if source is None else f"copied:{source}"


# Tables


@app.route(route="entities/{pk}/{rk}", methods=["GET"])
@app.table_input(
    arg_name="entity",
    connection=STORAGE,
    table_name="%TABLE%",
    partition_key="{pk}",
    row_key="{rk}",
)
def read_entity(req: func.HttpRequest, entity: str) -> func.HttpResponse:
    if entity is None:
        return func.HttpResponse("missing", status_code=404)
    return func.HttpResponse(entity, mimetype="application/json")


@app.route(route="entities/{pk}", methods=["GET"])
@app.table_input(
    arg_name="entities",
    connection=STORAGE,
    table_name="%TABLE%",
    partition_key="{pk}",
    filter="Kind eq '{kind}'",
    take=2,
)
def query_entities(req: func.HttpRequest, entities: str) -> func.HttpResponse:
    return func.HttpResponse(entities, mimetype="application/json")


@app.route(route="save/{pk}", methods=["POST"])
@app.table_output(arg_name="rows", connection=STORAGE, table_name="%TABLE%", partition_key="{pk}")
def save_entities(req: func.HttpRequest, rows: func.Out[str]) -> func.HttpResponse:
    """A JSON object saves one entity, an array several; set as the parsed value."""
    rows.set(req.get_json())
    return func.HttpResponse("saved", status_code=201)


@app.route(route="stamp/{pk}", methods=["POST"])
@app.table_output(
    arg_name="row", connection=STORAGE, table_name="%TABLE%", partition_key="{pk}",
    row_key="{rand-guid}",
)  # fmt: skip
@app.blob_output(arg_name="doc", path="%DOCS%/stamps/{rand-guid}.txt", connection=STORAGE)
def stamp(req: func.HttpRequest, row: func.Out[str], doc: func.Out[str]) -> func.HttpResponse:
    """{rand-guid} in two bindings of one invocation: the same GUID."""
    row.set(json.dumps({"Kind": "stamp"}))
    doc.set("stamped")
    return func.HttpResponse("stamped", status_code=201)
