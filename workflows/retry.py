"""Retry with backoff: an activity that fails a given number of times before it succeeds."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import orchestration as df

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def retry_with_backoff(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, dict[str, Any]]:
    """Call `flaky_operation` (failing `failures` times) with exponential backoff retries."""
    settings = context.get_input() or {}
    options = df.RetryOptions(
        first_retry_interval_in_milliseconds=int(settings.get("first_retry_ms", 200)),
        max_number_of_attempts=int(settings.get("max_attempts", 4)),
        backoff_coefficient=float(settings.get("backoff", 2.0)),
    )
    call = {"key": context.instance_id, "failures": int(settings.get("failures", 2))}
    result = yield context.call_activity_with_retry("flaky_operation", options, call)
    return {"status": "Succeeded", "attempts": result["attempts"]}
