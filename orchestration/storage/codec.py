"""How history is laid out in table rows, and how it is read back.

An execution's first step, when small, is kept in the state row itself (property FirstStep),
so that a new instance, or a short workflow run whole in its first commit, costs one entity
write. Every other committed step is one history row (or a few, for a very large step) in the
instance's partition, holding the step's events as a JSON array split over string properties
of at most 30,000 characters (Azurite refuses strings over 32,768; Azure counts 64 KiB of
UTF-16). An event whose JSON is larger than the payload threshold is moved to a blob first, so
rows stay small and a 1 MiB output costs one blob, not a row at the entity limit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from orchestration.core.history import HistoryEvent, event_from_dict, event_to_dict
from orchestration.storage.payloads import PayloadStore, is_reference

PROPERTY_CHARS = 30_000
PROPERTIES_PER_ROW = 15
ROW_CHARS = PROPERTY_CHARS * PROPERTIES_PER_ROW
HISTORY_PREFIX = "h"


def blob_prefix(instance_id: str) -> str:
    """Blob names of an instance's payloads start with this (ids may hold any character)."""
    return "i-" + hashlib.sha256(instance_id.encode("utf-8")).hexdigest()[:32]


def history_row_key(generation: int, step: int, part: int = 0) -> str:
    return f"{HISTORY_PREFIX}{generation:05d}-{step:07d}-{part:03d}"


def generation_prefix(generation: int) -> str:
    return f"{HISTORY_PREFIX}{generation:05d}-"


async def encode_events(
    events: Sequence[HistoryEvent], payloads: PayloadStore, instance_id: str
) -> str:
    """The JSON text of a step's events, with large events moved to blobs."""
    items: list[str] = []
    for event in events:
        text = json.dumps(event_to_dict(event), separators=(",", ":"))
        if len(text) > payloads.threshold:
            reference = await payloads.store(blob_prefix(instance_id), text)
            text = json.dumps(reference, separators=(",", ":"))
        items.append(text)
    return f"[{','.join(items)}]"


def split_text(text: str) -> list[dict[str, Any]]:
    """Spread a long text over rows of string properties E0, E1, ..."""
    rows: list[dict[str, Any]] = []
    for start in range(0, max(len(text), 1), ROW_CHARS):
        chunk = text[start : start + ROW_CHARS]
        row: dict[str, Any] = {}
        for index, offset in enumerate(range(0, max(len(chunk), 1), PROPERTY_CHARS)):
            row[f"E{index}"] = chunk[offset : offset + PROPERTY_CHARS]
        rows.append(row)
    return rows


def join_text(row: Mapping[str, Any]) -> str:
    parts = []
    index = 0
    while f"E{index}" in row:
        parts.append(row[f"E{index}"])
        index += 1
    return "".join(parts)


async def decode_rows(
    rows: Iterable[Mapping[str, Any]], payloads: PayloadStore
) -> list[HistoryEvent]:
    """Events from history rows, in row-key order (a step's parts are joined first)."""
    ordered = sorted(rows, key=lambda row: row["RowKey"])
    steps: dict[str, list[str]] = {}
    for row in ordered:
        step_key = row["RowKey"].rsplit("-", 1)[0]
        steps.setdefault(step_key, []).append(join_text(row))
    events: list[HistoryEvent] = []
    for texts in steps.values():
        events += await decode_step("".join(texts), payloads)
    return events


async def decode_step(text: str, payloads: PayloadStore) -> list[HistoryEvent]:
    """The events of one step's JSON text (as encode_events wrote it)."""
    items = json.loads(text)
    if len(items) == 1 and isinstance(items[0], dict) and "$chunk" in items[0]:
        items = json.loads(await payloads.fetch(items[0]["$chunk"]))
    events: list[HistoryEvent] = []
    for item in items:
        if is_reference(item):
            item = await payloads.resolve_json(item)
        events.append(event_from_dict(item))
    return events
