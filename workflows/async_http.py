"""Async HTTP API: a long job started over HTTP, its progress polled on the status URL."""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import azure.functions as func

import orchestration as df

bp = df.Blueprint()

DEFAULT_STEPS = 10
MAX_STEPS = 1000


@bp.orchestration_trigger(context_name="context")
def long_job(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Run `{"steps": N}` steps one by one; custom status reports the progress."""
    steps = int((context.get_input() or {}).get("steps", DEFAULT_STEPS))
    context.set_custom_status({"completed": 0, "total": steps})
    digests: list[str] = []
    for index in range(steps):
        step = {"job": context.instance_id, "index": index}
        digests.append((yield context.call_activity("run_job_step", step)))
        context.set_custom_status({"completed": index + 1, "total": steps})
    return {"steps": steps, "digests": digests}


@bp.route(route="jobs", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def start_job(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> Any:
    """Start `long_job` with the request's JSON body; 202 with the check-status URLs."""
    body = req.get_body()
    try:
        job = json.loads(body) if body.strip() else {}
        steps = job.get("steps", DEFAULT_STEPS) if isinstance(job, dict) else None
        if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_STEPS:
            return _bad_request(f'the body must be {{"steps": N}} with N from 1 to {MAX_STEPS}')
        # start_new refuses values that are not strict JSON (NaN, lone surrogates).
        instance_id = await client.start_new("long_job", None, job)
    except (ValueError, RecursionError) as error:  # RecursionError: nested too deeply
        return _bad_request(f"the body is not valid JSON: {error}")
    return client.create_check_status_response(req, instance_id)


def _bad_request(detail: str) -> func.HttpResponse:
    body = json.dumps({"error": "Invalid request", "detail": detail})
    return func.HttpResponse(body, status_code=400, mimetype="application/json")
