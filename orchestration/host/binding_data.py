"""The binding data each trigger provides: what `{name}` in another binding resolves against.

As the Functions host builds it: an HTTP trigger offers the JSON body's top-level properties,
then the query string's parameters, then the route's (a later source wins), plus `Query` and
`Headers`; a queue trigger its message metadata (`QueueTrigger`, `Id`, `DequeueCount`, ...)
overridden by the JSON body's top-level properties; a blob trigger its path pattern's
parameters plus `BlobTrigger`, `Uri`, `Properties` and `Metadata`. Names are matched without
regard to case. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from orchestration.bindings.expressions import binding_data_of

HTTP_NAMES = frozenset({"Query", "Headers"})
QUEUE_NAMES = frozenset(
    {
        "QueueTrigger",
        "Id",
        "DequeueCount",
        "InsertionTime",
        "ExpirationTime",
        "NextVisibleTime",
        "PopReceipt",
    }
)
BLOB_NAMES = frozenset({"BlobTrigger", "Uri", "Properties", "Metadata"})


def merged(*sources: Mapping[str, Any]) -> dict[str, Any]:
    """The sources as one mapping, a later one winning over an earlier one for a name spelled
    in any case (so `{id}` cannot find two values)."""
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for source in sources:
        for key, value in source.items():
            previous = spelled.get(key.lower())
            if previous is not None:
                del out[previous]
            spelled[key.lower()] = key
            out[key] = value
    return out


def json_properties(body: bytes | str) -> dict[str, Any]:
    """The top-level properties of a JSON object body; nothing for any other body."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    if not text.lstrip().startswith("{"):
        return {}
    try:
        return binding_data_of(json.loads(text))
    except ValueError:
        return {}


def http_binding_data(
    route_values: Mapping[str, str],
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes | None,
) -> dict[str, Any]:
    """An HTTP trigger's binding data; `body` None skips parsing it."""
    parameters = dict(query)
    return merged(
        json_properties(body) if body else {},
        parameters,
        route_values,
        {"Query": parameters, "Headers": dict(headers)},
    )


def queue_binding_data(
    message_id: str,
    body: bytes,
    dequeue_count: int,
    inserted_on: datetime | None,
    expires_on: datetime | None,
    next_visible_on: datetime | None,
    pop_receipt: str,
    *,
    properties: bool = True,
) -> dict[str, Any]:
    """A queue trigger's binding data; a JSON body's properties (unless `properties` is
    false: no binding uses them) win over the metadata, as in the WebJobs SDK."""
    text = body.decode("utf-8", errors="replace")
    metadata = {
        "QueueTrigger": text,
        "Id": message_id,
        "DequeueCount": dequeue_count,
        "InsertionTime": inserted_on,
        "ExpirationTime": expires_on,
        "NextVisibleTime": next_visible_on,
        "PopReceipt": pop_receipt,
    }
    return merged(metadata, json_properties(text)) if properties else metadata


def blob_binding_data(
    parameters: Mapping[str, str],
    container: str,
    name: str,
    uri: str,
    properties: Mapping[str, Any],
    metadata: Mapping[str, str],
) -> dict[str, Any]:
    """A blob trigger's binding data: the path pattern's parameters win over the metadata."""
    fixed = {
        "BlobTrigger": f"{container}/{name}",
        "Uri": uri,
        "Properties": dict(properties),
        "Metadata": dict(metadata),
    }
    return merged(fixed, parameters)
