"""Upload → report: a text file PUT over HTTP lands in the `uploads` container through a blob
output binding; a blob trigger starts `summarize_upload` for each new or changed blob; its
activities read the upload through a blob input binding, count words in parallel and write the
report through a blob output and a table output; `GET /api/reports/{name}` reads both back
through input bindings."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Generator
from typing import Any

import azure.functions as func

import orchestration as df
from activities.uploads import CONNECTION, MAX_UPLOAD_BYTES

bp = df.Blueprint()

log = logging.getLogger("workflows.uploads")

UPLOADS = "uploads"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def report_key(name: str) -> str:
    """A blob name as a table row key and a report blob name: characters keys may not hold
    (`/ \\ # ?`, control characters) become `_`."""
    return re.sub(r"[/\\#?\x00-\x1f\x7f]", "_", name)


@bp.route(route="uploads/{name}", methods=["PUT", "POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.blob_output(arg_name="upload", path="uploads/{name}", connection=CONNECTION)
def put_upload(req: func.HttpRequest, upload: func.Out[bytes]) -> func.HttpResponse:
    """Store the body (UTF-8 text, at most 256 KiB) as `uploads/{name}`; the blob trigger
    takes it from there. 202 with where the report will be."""
    name = req.route_params.get("name", "")
    body = req.get_body()
    if not _NAME.match(name):
        return _error(400, "the name is 1-128 letters, digits, '.', '_' or '-'")
    if not body:
        return _error(400, "the body is the text to summarize; it is empty")
    if len(body) > MAX_UPLOAD_BYTES:
        return _error(413, f"an upload holds at most {MAX_UPLOAD_BYTES} bytes")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return _error(400, "the body must be UTF-8 text")
    upload.set(body)
    answer = {"upload": f"{UPLOADS}/{name}", "report": f"/api/reports/{name}"}
    return func.HttpResponse(json.dumps(answer), status_code=202, mimetype="application/json")


@bp.blob_trigger(arg_name="blob", path="uploads/{name}", connection=CONNECTION)
@bp.durable_client_input(client_name="client")
async def on_upload(blob: func.InputStream, client: df.DurableOrchestrationClient) -> None:
    """Start `summarize_upload` for a new or changed blob in `uploads`."""
    name = (blob.name or "").split("/", 1)[-1]
    upload = {"name": name, "key": report_key(name), "bytes": blob.length}
    instance_id = await client.start_new("summarize_upload", None, upload)
    log.info("upload %s: started summarize_upload %s", name, instance_id)


@bp.orchestration_trigger(context_name="context")
def summarize_upload(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, dict[str, Any]]:
    """Split the upload into paragraphs, count each one's words in parallel, write the report."""
    upload = context.get_input()
    paragraphs = yield context.call_activity("split_upload", upload)
    counts = yield context.task_all([context.call_activity("count_words", p) for p in paragraphs])
    report = {
        "name": upload["name"],
        "key": upload["key"],
        "bytes": upload["bytes"],
        "paragraphs": len(paragraphs),
        "words": sum(counts),
        "per_paragraph": counts,
        "instance_id": context.instance_id,
    }
    report["report_blob"] = yield context.call_activity("write_upload_report", report)
    return report


@bp.route(route="reports/{name}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.table_input(
    arg_name="row", table_name="UploadReports", partition_key="uploads", row_key="{name}",
    connection=CONNECTION,
)  # fmt: skip
@bp.blob_input(arg_name="report", path="reports/{name}.json", connection=CONNECTION)
def get_report(req: func.HttpRequest, row: str | None, report: str | None) -> func.HttpResponse:
    """The summary row and the report document of an upload; 404 until both exist."""
    if row is None or report is None:
        return _error(404, "no report for this upload (yet): is it still being summarized?")
    answer = {"summary": json.loads(row), "report": json.loads(report)}
    return func.HttpResponse(json.dumps(answer), mimetype="application/json")


def _error(status: int, detail: str) -> func.HttpResponse:
    error = "Not found" if status == 404 else "Invalid request"
    body = json.dumps({"error": error, "detail": detail})
    return func.HttpResponse(body, status_code=status, mimetype="application/json")
