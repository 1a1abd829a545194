"""Monitor: poll a job on a fixed schedule until it completes or the monitor expires."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import orchestration as df

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def job_monitor(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Check `job` every `interval_seconds` until Completed or `expiry_seconds` have passed.

    Checks run at start, start + interval, start + 2 * interval, ... (fixed rate, from the
    scheduled times rather than the clock), so the number of checks is deterministic.
    """
    settings = context.get_input() or {}
    job = settings.get("job", "job-1")
    interval = timedelta(seconds=float(settings.get("interval_seconds", 5)))
    started = context.current_utc_datetime
    expires = started + timedelta(seconds=float(settings.get("expiry_seconds", 60)))
    check = 0
    while True:
        check += 1
        request = {"job": job, "check": check, "ready_after": settings.get("ready_after")}
        state = yield context.call_activity("check_job_status", request)
        context.set_custom_status({"checks": check, "state": state})
        if state == "Completed":
            return {"job": job, "status": "Completed", "checks": check}
        next_check = started + interval * check
        if next_check > expires:
            return {"job": job, "status": "Expired", "checks": check}
        yield context.create_timer(next_check)
