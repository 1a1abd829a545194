"""Scans of a task hub's state rows for operators (the overview, `hub info`): counts by
status and the newest failures. They read only the columns they need, and stop at a bound,
because they cross every instance of the hub."""

from __future__ import annotations

import heapq
from collections import Counter
from datetime import datetime

from orchestration.storage.hub import TaskHub
from orchestration.storage.names import from_key, odata_string
from orchestration.storage.state import STATE_ROW, InstanceState, utc


def _state_rows(filter: str | None) -> str:
    clause = f"RowKey eq {odata_string(STATE_ROW)}"
    return f"{clause} and ({filter})" if filter else clause


async def count_by_status(
    hub: TaskHub, limit: int | None = None, *, filter: str | None = None
) -> Counter[str]:
    """How many instances the hub holds in each runtime status (with `limit`, it stops after
    counting that many; `filter`, built from validated values, narrows the rows, e.g. to
    orchestrations)."""
    counts: Counter[str] = Counter()
    async for row in hub.tables.query(
        hub.names.instances_table, filter=_state_rows(filter), select=["RuntimeStatus"]
    ):
        counts[str(row.get("RuntimeStatus"))] += 1
        if limit is not None and counts.total() >= limit:
            break
    return counts


async def newest(
    hub: TaskHub, filter: str | None, limit: int, scan_limit: int = 100_000
) -> list[InstanceState]:
    """The `limit` instances matching `filter` updated last, newest first: a scan of the
    rows' id and time only (stopping after `scan_limit`), then `limit` reads."""
    kept: list[tuple[datetime, str]] = []
    scanned = 0
    async for row in hub.tables.query(
        hub.names.instances_table,
        filter=_state_rows(filter),
        select=["InstanceId", "LastUpdatedTime"],
    ):
        entry = (
            utc(row["LastUpdatedTime"]),
            row.get("InstanceId") or from_key(row["PartitionKey"]),
        )
        if len(kept) < limit:
            heapq.heappush(kept, entry)
        else:
            heapq.heappushpop(kept, entry)
        scanned += 1
        if scanned >= scan_limit:
            break
    states = [await hub.read_state(instance_id) for _, instance_id in sorted(kept, reverse=True)]
    return [state for state in states if state is not None]
