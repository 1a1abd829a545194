"""Activities of the upload → report workflow: their storage is reached through blob and table
bindings, which the engine applies around each run (inputs read before it, outputs written only
after it succeeded), with expressions resolved from the activity's input."""

from __future__ import annotations

import json
import re
from typing import Any

import azure.functions as func

import orchestration as df

bp = df.Blueprint()

CONNECTION = "AzureWebJobsStorage"
MAX_PARAGRAPHS = 64
"""The fan-out's width: longer uploads have their paragraphs grouped."""
MAX_UPLOAD_BYTES = 256 * 1024
"""History holds every paragraph as an activity result: uploads stay well under a message
(the HTTP starter refuses larger bodies, split_upload larger blobs written by other means)."""


def paragraphs_of(text: str, limit: int = MAX_PARAGRAPHS) -> list[str]:
    """The non-blank paragraphs of `text` (blank lines separate them), grouped into at most
    `limit` parts."""
    parts = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    if len(parts) <= limit:
        return parts
    size = -(-len(parts) // limit)
    return ["\n\n".join(parts[i : i + size]) for i in range(0, len(parts), size)]


@bp.activity_trigger(input_name="upload")
@bp.blob_input(arg_name="text", path="uploads/{name}", connection=CONNECTION)
def split_upload(upload: dict[str, Any], text: str | None) -> list[str]:
    """The paragraphs of `uploads/{name}`; fails when it is gone or too large to summarize."""
    if text is None:
        raise FileNotFoundError(f"uploads/{upload['name']} no longer exists")
    if len(text.encode("utf-8")) > MAX_UPLOAD_BYTES:
        raise ValueError(f"uploads/{upload['name']} is over {MAX_UPLOAD_BYTES} bytes")
    return paragraphs_of(text)


@bp.activity_trigger(input_name="report")
@bp.blob_output(arg_name="document", path="reports/{key}.json", connection=CONNECTION)
@bp.table_output(
    arg_name="row", table_name="UploadReports", partition_key="uploads", row_key="{key}",
    connection=CONNECTION,
)  # fmt: skip
def write_upload_report(report: dict[str, Any], document: func.Out[str], row: func.Out[str]) -> str:
    """Write the report document and its summary row (upserted: a re-run writes the same)."""
    document.set(json.dumps(report, indent=2))
    summary = {
        "Name": report["name"],
        "Words": report["words"],
        "Paragraphs": report["paragraphs"],
        "Bytes": report["bytes"],
        "InstanceId": report["instance_id"],
    }
    row.set(json.dumps(summary))
    return f"reports/{report['key']}.json"
