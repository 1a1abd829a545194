"""JSON encoding of orchestration payloads (inputs, results, event data, custom status).

Strict both ways, so that nothing stored can make a status or a list page invalid JSON for
a strict client: numbers must be finite (`NaN`, `Infinity` and overflowing literals such as
`1e99999` are refused), text must be Unicode (a lone surrogate such as `"\\ud800"` is
refused), and so is nesting too deep to encode again. A value that breaks a rule raises
`InvalidPayloadError`, a `ValueError` (and a `TypeError` for objects JSON cannot hold, as
`json` does).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from datetime import date, datetime
from enum import Enum
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


class InvalidPayloadError(ValueError, TypeError):
    """A value that is not strict JSON: a non-finite number, a lone surrogate, nesting too
    deep for the recursion limit, or an object JSON cannot represent."""


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
    raise InvalidPayloadError(f"Object of type {type(value).__name__} is not JSON serializable")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise InvalidPayloadError(f"the number {text[:40]} is out of range for JSON")
    return number


def _no_constant(name: str) -> Any:
    raise InvalidPayloadError(f"{name} is not a JSON value")


_encoder = json.JSONEncoder(default=_default, separators=(",", ":"), allow_nan=False)
_decoder = json.JSONDecoder(parse_float=_finite, parse_constant=_no_constant)


def _check_text(value: Any) -> None:
    """Raise if any string (key or value) of a decoded value holds a surrogate."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise InvalidPayloadError(
                "a string holds a lone surrogate (e.g. \\ud800), which is not Unicode text"
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list):
        for item in value:
            _check_text(item)


_TOO_DEEP = "the value is nested too deeply"


def dumps(value: Any) -> str | None:
    """Encode a payload; None stays None (no payload). InvalidPayloadError if not strict."""
    if value is None:
        return None
    try:
        text = _encoder.encode(value)
        # Python escapes every surrogate as \\udXXX: only then is a closer look needed.
        if "\\ud" in text:
            _check_text(_decoder.decode(text))
    except RecursionError:
        raise InvalidPayloadError(_TOO_DEEP) from None
    except ValueError as error:
        if isinstance(error, InvalidPayloadError):
            raise
        raise InvalidPayloadError(f"the value is not JSON: {error}") from None
    return text


def loads(text: str | None) -> Any:
    """Decode a payload; None or empty text is None. InvalidPayloadError if not strict,
    json.JSONDecodeError (a ValueError) if not JSON at all."""
    if not text:
        return None
    try:
        value = _decoder.decode(text)
        if _ESCAPED_SURROGATE.search(text):
            _check_text(value)
    except RecursionError:
        raise InvalidPayloadError(_TOO_DEEP) from None
    return value


def check(value: Any) -> Any:
    """`value` if it encodes as strict JSON, else InvalidPayloadError."""
    dumps(value)
    return value
