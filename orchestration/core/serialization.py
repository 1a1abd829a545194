"""JSON encoding of orchestration payloads (inputs, results, event data, custom status).

Strict both ways, so that nothing stored can make a status or a list page invalid JSON for
a strict client: numbers must be finite (`NaN`, `Infinity` and overflowing literals such as
`1e99999` are refused), text must be Unicode (a lone surrogate such as `"\\ud800"` is
refused), and so is nesting too deep to encode again. A value that breaks a rule raises
`InvalidPayloadError`, a `ValueError` (and a `TypeError` for objects JSON cannot hold, as
`json` does).

Custom classes follow azure-functions-durable's convention: a class with `to_json(obj) -> str`
and `from_json(text) -> obj` (static methods, or an instance `to_json`) travels as
`{"__class__": ..., "__module__": ..., "__data__": ...}`, and `decode` rebuilds it on the other
side from a module already imported (never importing one a payload names). `loads` is the
plain decoder for the engine's own records; `decode` is for the user's values.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import sys
from datetime import date, datetime
from enum import Enum
from typing import Any

_logger = logging.getLogger(__name__)
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


class InvalidPayloadError(ValueError, TypeError):
    """A value that is not strict JSON: a non-finite number, a lone surrogate, nesting too
    deep for the recursion limit, or an object JSON cannot represent."""


# azure-functions-durable's switch: rebuild custom objects only where a type is expected.
STRICT_TYPING_VARIABLE = "AZURE_FUNCTIONS_DURABLE_STRICT_TYPING"
_ENVELOPE = frozenset({"__class__", "__module__", "__data__"})


def _default(value: Any) -> Any:
    to_json = getattr(type(value), "to_json", None)
    if callable(to_json):
        # `type(value).to_json(value)` serves DF's static `to_json(obj)` and a plain method alike.
        return {
            "__class__": type(value).__name__,
            "__module__": type(value).__module__,
            "__data__": to_json(value),
        }
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


def is_strict_typing() -> bool:
    return os.environ.get(STRICT_TYPING_VARIABLE, "").strip().lower() in {"1", "true", "yes"}


def _is_envelope(value: Any) -> bool:
    return isinstance(value, dict) and _ENVELOPE.issubset(value) and len(value) == 3


def _class_of(envelope: dict[str, Any]) -> type | None:
    """The loaded class an envelope names, if it has `from_json`; modules are never imported."""
    module = sys.modules.get(str(envelope["__module__"]))
    cls = getattr(module, str(envelope["__class__"]), None) if module is not None else None
    if isinstance(cls, type) and callable(getattr(cls, "from_json", None)):
        return cls
    return None


def _rebuild(value: Any) -> Any:
    """Rebuild the custom objects inside a decoded value (innermost first, as json's hook)."""
    try:
        return _rebuild_nested(value)
    except RecursionError:
        raise InvalidPayloadError(_TOO_DEEP) from None


def _rebuild_nested(value: Any) -> Any:
    if isinstance(value, list):
        return [_rebuild_nested(item) for item in value]
    if not isinstance(value, dict):
        return value
    rebuilt = {key: _rebuild_nested(item) for key, item in value.items()}
    if _is_envelope(rebuilt):
        cls = _class_of(rebuilt)
        if cls is not None:
            return cls.from_json(rebuilt["__data__"])  # type: ignore[attr-defined]
    return rebuilt


def _names(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _fits(value: Any, expected_type: Any) -> bool:
    try:
        return isinstance(value, expected_type)
    except TypeError:  # list[int], Optional[X]: not checkable, as DF
        return True


def decode(text: str | None, expected_type: Any = None) -> Any:
    """A user's value from its payload, custom objects rebuilt (see `revive`)."""
    raw = loads(text)
    if expected_type is None and text is not None and '"__class__"' not in text:
        return raw  # no envelope inside: nothing to rebuild
    return revive(raw, expected_type)


def revive(raw: Any, expected_type: Any = None) -> Any:
    """A user's value from its decoded JSON, custom objects rebuilt.

    An envelope whose class is loaded (and has `from_json`) becomes that object again; one that
    names a class not loaded here stays the plain dict, so a client or the CLI can read any
    instance. `expected_type` (a class) rebuilds the top-level envelope with that class even
    when its module is not loaded, and a value of another type is logged; in DF's strict mode
    (AZURE_FUNCTIONS_DURABLE_STRICT_TYPING=1) only `expected_type` rebuilds, and a mismatch
    raises TypeError.
    """
    if raw is None:
        return None
    strict = is_strict_typing()
    if expected_type is None:
        if strict:
            if _is_envelope(raw):
                raise TypeError(
                    f"strict typing: the payload holds a {raw['__module__']}.{raw['__class__']} "
                    f"but no expected_type says how to rebuild it"
                )
            return raw
        return _rebuild(raw)
    if _is_envelope(raw) and isinstance(expected_type, type):
        named = f"{raw['__module__']}.{raw['__class__']}"
        if (raw["__module__"], raw["__class__"]) != (
            expected_type.__module__,
            expected_type.__name__,
        ):
            message = f"the payload holds a {named}, not the expected {_names(expected_type)}"
            if strict:
                raise TypeError(message)
            _logger.warning(message)
        elif callable(getattr(expected_type, "from_json", None)):
            data = raw["__data__"] if strict else _rebuild(raw["__data__"])
            return expected_type.from_json(data)  # type: ignore[attr-defined]
        elif strict:
            raise TypeError(f"{_names(expected_type)} has no from_json to rebuild the payload")
        return raw if strict else _rebuild(raw)
    if not _fits(raw, expected_type):
        message = f"the payload is a {type(raw).__name__}, not the expected {expected_type}"
        if strict:
            raise TypeError(message)
        _logger.warning(message)
    return raw if strict else _rebuild(raw)


def check(value: Any) -> Any:
    """`value` if it encodes as strict JSON, else InvalidPayloadError."""
    dumps(value)
    return value
