"""Human interaction: wait for an approval event, or time out."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import orchestration as df

bp = df.Blueprint()

APPROVAL_EVENT = "ApprovalEvent"


@bp.orchestration_trigger(context_name="context")
def approval_workflow(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, dict[str, Any]]:
    """Ask for approval, then race the `ApprovalEvent` against `timeout_seconds`."""
    request = context.get_input() or {}
    subject = request.get("subject", "a request")
    notice = {
        "instance_id": context.instance_id,
        "subject": subject,
        "requester": request.get("requester", "someone"),
    }
    yield context.call_activity("send_approval_request", notice)
    context.set_custom_status({"stage": "awaiting approval"})
    deadline = context.current_utc_datetime + timedelta(
        seconds=float(request.get("timeout_seconds", 3600))
    )
    decision_task = context.wait_for_external_event(APPROVAL_EVENT)
    timeout_task = context.create_timer(deadline)
    winner = yield context.task_any([decision_task, timeout_task])
    status, by = "TimedOut", None
    if winner is decision_task:
        timeout_task.cancel()
        decision = decision_task.result or {}
        status = "Approved" if decision.get("approved") else "Rejected"
        by = decision.get("by")
    context.set_custom_status({"stage": status.lower()})
    outcome: dict[str, Any] = {"status": status, "by": by}
    summary = {"instance_id": context.instance_id, "subject": subject, **outcome}
    outcome["summary"] = yield context.call_activity("record_decision", summary)
    return outcome
