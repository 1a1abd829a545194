"""JSON encoding of orchestration payloads (inputs, results, event data, custom status)."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from enum import Enum
from typing import Any


def _default(value: Any) -> Any:
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_encoder = json.JSONEncoder(default=_default, separators=(",", ":"))
_decoder = json.JSONDecoder()


def dumps(value: Any) -> str | None:
    """Encode a payload; None stays None (no payload)."""
    if value is None:
        return None
    return _encoder.encode(value)


def loads(text: str | None) -> Any:
    """Decode a payload; None or empty text is None."""
    if not text:
        return None
    return _decoder.decode(text)
