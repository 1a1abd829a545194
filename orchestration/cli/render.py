"""Human-readable output of the CLI: tables, an instance's summary and its timeline."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from orchestration.client import DurableOrchestrationStatus


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with aligned columns."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def when(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        moment = value
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summary(status: DurableOrchestrationStatus) -> str:
    took = (status.last_updated_time - status.created_time).total_seconds()
    lines = [
        f"Instance:  {status.instance_id}",
        f"Name:      {status.name}",
        f"Status:    {status.runtime_status.value}",
        f"Created:   {when(status.created_time)}",
        f"Updated:   {when(status.last_updated_time)} ({duration(took)} after creation)",
    ]
    if status.input_ is not None:
        lines.append(f"Input:     {short(status.input_, 200)}")
    if status.custom_status is not None:
        lines.append(f"Custom:    {short(status.custom_status, 200)}")
    if status.output is not None:
        lines.append(f"Output:    {short(status.output, 200)}")
    return "\n".join(lines)


_ENDS = {
    "TaskCompleted",
    "TaskFailed",
    "SubOrchestrationInstanceCompleted",
    "SubOrchestrationInstanceFailed",
}


def timeline(history: list[dict[str, Any]]) -> str:
    """The steps of an instance: one row per event worth reading, with durations of tasks,
    sub-orchestrations and timers measured from when they were scheduled."""
    if not history:
        return "(no history)"
    times = [t for t in (_time(e) for e in history) if t is not None]
    start = min(times) if times else None
    scheduled: dict[int, tuple[str, datetime | None]] = {}
    timers: dict[int, datetime | None] = {}
    rows: list[list[str]] = []
    for event in history:
        kind = str(event.get("EventType"))
        at = _time(event)
        offset = duration((at - start).total_seconds()) if at and start else ""
        name = str(event.get("Name") or "")
        took = ""
        detail = ""
        if kind in ("TaskScheduled", "SubOrchestrationInstanceCreated"):
            scheduled[int(event.get("EventId", -1))] = (name, at)
            if kind == "SubOrchestrationInstanceCreated":
                detail = str(event.get("InstanceId") or "")
        elif kind in _ENDS:
            name, began = scheduled.get(int(event.get("TaskScheduledId", -1)), ("", None))
            if began and at:
                took = duration((at - began).total_seconds())
            failure = event.get("Failure")
            if isinstance(failure, dict):
                detail = f"{failure.get('errorType')}: {failure.get('message')}"
        elif kind == "TimerCreated":
            timers[int(event.get("EventId", -1))] = at
            detail = f"fires {when(event.get('FireAt'))}"
        elif kind == "TimerFired":
            began = timers.get(int(event.get("TimerId", -1)))
            if began and at:
                took = duration((at - began).total_seconds())
        elif kind in ("ExecutionTerminated", "ExecutionSuspended", "ExecutionResumed"):
            detail = str(event.get("Reason") or "")
        elif kind == "ExecutionCompleted":
            detail = str(event.get("Status") or "")
            failure = event.get("Failure")
            if isinstance(failure, dict):
                detail += f" {failure.get('errorType')}: {failure.get('message')}"
        elif kind == "OrchestratorStarted":
            continue
        rows.append([f"+{offset}", kind, name, took, short(detail, 70) if detail else ""])
    return table(["AT", "EVENT", "NAME", "TOOK", "DETAIL"], rows)


def _time(event: dict[str, Any]) -> datetime | None:
    value = event.get("Timestamp")
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None
