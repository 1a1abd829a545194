"""An instance's state row: what a query shows, and what a commit is conditional on."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orchestration.azure import Entity
from orchestration.core.history import FailureDetails, ParentInstance
from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.storage import codec
from orchestration.storage.names import from_key, to_key
from orchestration.storage.payloads import PayloadStore

STATE_ROW = "state"
APPLIED_IDS_KEPT = 200


@dataclass(slots=True)
class InstanceState:
    """The state row of an instance: what a query shows and what a commit is conditional on."""

    instance_id: str
    name: str
    status: OrchestrationRuntimeStatus
    created_at: datetime
    updated_at: datetime
    input: str | None = None
    output: str | None = None
    custom_status: str | None = None
    failure: FailureDetails | None = None
    execution_id: str = ""
    generation: int = 0
    steps: int = 0
    version: str | None = None
    parent: ParentInstance | None = None
    applied_ids: list[str] = field(default_factory=list)
    repairs: int = 0
    next_repair_at: datetime | None = None
    # Set while a process holds the instance's work with no queue message behind it (a local
    # start's activities, a near timer firing locally): if nothing is committed by then, the
    # timer sweeper wakes the instance.
    wake_at: datetime | None = None
    # The execution's first step (its events' JSON), kept in the state row when small.
    first_step: str | None = None
    # The execution's place in its trace (telemetry.links.TraceLink, encoded), if traced.
    trace: str | None = None
    etag: str | None = None


def utc(value: datetime) -> datetime:
    """A datetime as UTC-aware (the service may hand back naive ones)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def state_from_row(row: Entity) -> InstanceState:
    """An InstanceState from its row (payload references left as they are)."""
    failure = row.get("Failure")
    parent = row.get("Parent")
    return InstanceState(
        instance_id=row.get("InstanceId") or from_key(row["PartitionKey"]),
        name=row["Name"],
        status=OrchestrationRuntimeStatus(row["RuntimeStatus"]),
        created_at=utc(row["CreatedTime"]),
        updated_at=utc(row["LastUpdatedTime"]),
        input=row.get("Input"),
        output=row.get("Output"),
        custom_status=row.get("CustomStatus"),
        failure=FailureDetails.from_dict(json.loads(failure)) if failure else None,
        execution_id=row.get("ExecutionId", ""),
        generation=int(row.get("Generation", 0)),
        steps=int(row.get("Steps", 0)),
        version=row.get("Version"),
        parent=ParentInstance(**json.loads(parent)) if parent else None,
        applied_ids=json.loads(row.get("AppliedIds") or "[]"),
        repairs=int(row.get("Repairs", 0)),
        next_repair_at=utc(row["NextRepairAt"]) if row.get("NextRepairAt") else None,
        wake_at=utc(row["WakeAt"]) if row.get("WakeAt") else None,
        first_step=row.get("FirstStep"),
        trace=trace if isinstance(trace := row.get("TraceContext"), str) else None,
        etag=row.etag,
    )


async def state_row(state: InstanceState, payloads: PayloadStore) -> dict[str, Any]:
    """The row of a state; values over the payload threshold are stored as blobs."""
    prefix = codec.blob_prefix(state.instance_id)
    row: dict[str, Any] = {
        "PartitionKey": to_key(state.instance_id),
        "RowKey": STATE_ROW,
        "InstanceId": state.instance_id,
        "Name": state.name,
        "RuntimeStatus": state.status.value,
        "CreatedTime": state.created_at,
        "LastUpdatedTime": state.updated_at,
        "ExecutionId": state.execution_id,
        "Generation": state.generation,
        "Steps": state.steps,
        "AppliedIds": json.dumps(state.applied_ids[-APPLIED_IDS_KEPT:]),
    }
    for key, value in (
        ("Input", state.input),
        ("Output", state.output),
        ("CustomStatus", state.custom_status),
        ("Failure", json.dumps(state.failure.to_dict()) if state.failure else None),
    ):
        if value is None:
            row[key] = None
        elif len(value) > payloads.threshold:
            row[key] = json.dumps(await payloads.store(prefix, value))
        else:
            row[key] = value
    if state.version is not None:
        row["Version"] = state.version
    if state.wake_at is not None:
        row["WakeAt"] = state.wake_at
    if state.first_step is not None:
        row["FirstStep"] = state.first_step
    if state.trace is not None:
        row["TraceContext"] = state.trace
    if state.parent is not None:
        parent = state.parent
        row["Parent"] = json.dumps(
            {
                "instance_id": parent.instance_id,
                "name": parent.name,
                "task_scheduled_id": parent.task_scheduled_id,
            }
        )
    return {k: v for k, v in row.items() if v is not None}
