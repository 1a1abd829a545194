"""Monitor: check an (simulated) external job's state."""

from __future__ import annotations

from typing import Any

import orchestration as df

bp = df.Blueprint()


@bp.activity_trigger(input_name="check")
def check_job_status(check: dict[str, Any]) -> str:
    """The job's state at check number `check["check"]`: Completed from `ready_after` on."""
    ready_after = check.get("ready_after")
    if ready_after is not None and check["check"] >= ready_after:
        return "Completed"
    return "Running"
