"""Human interaction: ask for an approval, record the outcome."""

from __future__ import annotations

import logging
from typing import Any

import orchestration as df

bp = df.Blueprint()
log = logging.getLogger(__name__)


@bp.activity_trigger(input_name="request")
def send_approval_request(request: dict[str, Any]) -> str:
    """Notify the approver (logged here); the notification's text."""
    text = f"Please approve {request['subject']} for {request['requester']}"
    log.info("approval request for %s: %s", request["instance_id"], text)
    return text


@bp.activity_trigger(input_name="outcome")
def record_decision(outcome: dict[str, Any]) -> str:
    """Record the decision (logged here); a one-line summary of it."""
    summary = f"{outcome['subject']}: {outcome['status']}"
    log.info("decision for %s: %s", outcome["instance_id"], summary)
    return summary
