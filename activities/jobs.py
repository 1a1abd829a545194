"""Async HTTP API: one step of a long-running job."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import orchestration as df

bp = df.Blueprint()

STEP_SECONDS = 0.02


@bp.activity_trigger(input_name="step")
async def run_job_step(step: dict[str, Any]) -> str:
    """Process step `step["index"]` of job `step["job"]`; a short digest of the work."""
    await asyncio.sleep(STEP_SECONDS)
    data = f"{step['job']}:{step['index']}".encode()
    return hashlib.sha256(data).hexdigest()[:8]
