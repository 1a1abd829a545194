"""OData filters over instances' state rows, built only from typed, validated values.

The durable client's queries (`get_status_by`, `purge_instance_history_by`) and the
management API's listings share them, so a filter means the same everywhere.
"""

from __future__ import annotations

from datetime import datetime

from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.storage.entities import NOT_ENTITY_NAMES
from orchestration.storage.names import odata_datetime, odata_string

_KEY_ESCAPES = {"%": "%25", "/": "%2F", "\\": "%5C", "#": "%23", "?": "%3F"}


def build_filter(
    created_time_from: datetime | None,
    created_time_to: datetime | None,
    runtime_status: list[OrchestrationRuntimeStatus] | None,
) -> str | None:
    """An OData filter over orchestrations' state rows (entities' are left out)."""
    clauses = [NOT_ENTITY_NAMES]
    if created_time_from is not None:
        clauses.append(f"CreatedTime ge {odata_datetime(created_time_from)}")
    if created_time_to is not None:
        clauses.append(f"CreatedTime le {odata_datetime(created_time_to)}")
    if runtime_status:
        statuses = [OrchestrationRuntimeStatus(s) for s in runtime_status]
        clauses.append(
            "(" + " or ".join(f"RuntimeStatus eq {odata_string(s.value)}" for s in statuses) + ")"
        )
    return " and ".join(clauses) or None


def _key_prefix(prefix: str) -> str:
    """The PartitionKey prefix of instance ids starting with `prefix` (keys escape a few
    characters, one at a time, so the key of a prefix is a prefix of the key)."""
    return "".join(_KEY_ESCAPES.get(char, char) for char in prefix)


def _successor(text: str) -> str | None:
    """The smallest string greater than every string starting with `text` (None: no bound),
    skipping characters a filter literal cannot hold (controls, surrogates)."""
    chars = list(text)
    while chars:
        code = ord(chars[-1]) + 1
        if code <= 0x1F:
            code = 0x20
        elif 0x7F <= code <= 0x9F:
            code = 0xA0
        elif 0xD800 <= code <= 0xDFFF:
            code = 0xE000
        if code <= 0xFFFF:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


def prefix_clause(prefix: str) -> str:
    """An OData clause selecting the instances whose id starts with `prefix`."""
    low = _key_prefix(prefix)
    clause = f"PartitionKey ge {odata_string(low)}"
    high = _successor(low)
    if high is not None:
        clause += f" and PartitionKey lt {odata_string(high)}"
    return clause


def instance_filter(
    created_time_from: datetime | None = None,
    created_time_to: datetime | None = None,
    runtime_status: list[OrchestrationRuntimeStatus] | None = None,
    instance_id_prefix: str | None = None,
    *,
    name: str | None = None,
    updated_from: datetime | None = None,
) -> str | None:
    """`build_filter`'s clauses, the instance id prefix's key range, the orchestrator's
    name and the last-updated lower bound, each when given."""
    clauses = []
    base = build_filter(created_time_from, created_time_to, runtime_status)
    if base:
        clauses.append(base)
    if name:
        clauses.append(f"Name eq {odata_string(name)}")
    if updated_from is not None:
        clauses.append(f"LastUpdatedTime ge {odata_datetime(updated_from)}")
    if instance_id_prefix:
        clauses.append(prefix_clause(instance_id_prefix))
    return " and ".join(f"({c})" for c in clauses) or None
