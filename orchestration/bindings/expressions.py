"""Binding expressions, as the Functions host resolves them in a binding's properties.

`{name}` takes a value from the binding data (a blob trigger's path parameters, the top-level
properties of a JSON trigger payload, trigger metadata); `{a.b}` reaches into nested objects;
`{rand-guid}` / `{sys.randguid}` are a new GUID, `{DateTime}` / `{sys.utcnow}` the current UTC
time, each with an optional .NET format after a colon (`{rand-guid:N}`, `{DateTime:yyyy-MM}`).
`%Setting%` (app settings) is resolved before, by whoever holds the settings. `{{` and `}}`
are literal braces. Pure: no I/O.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class BindingExpressionError(ValueError):
    """A binding expression is malformed or names a value the binding data does not hold."""


_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
# As the host's parser: an identifier, then `.member` parts that may hold `-` (`{a.x-header}`);
# the first part may not (only the built-in `rand-guid` has one).
_PARAMETER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$")
_BUILTINS = ("rand-guid", "sys.randguid", "sys.utcnow", "datetime")
# .NET custom date and time format specifiers, longest first so "yyyy" wins over "yy".
_DATE_PARTS: list[tuple[str, Callable[[datetime], str]]] = [
    ("yyyy", lambda t: f"{t.year:04d}"),
    ("yy", lambda t: f"{t.year % 100:02d}"),
    ("y", lambda t: str(t.year % 100)),
    ("MMMM", lambda t: t.strftime("%B")),
    ("MMM", lambda t: t.strftime("%b")),
    ("MM", lambda t: f"{t.month:02d}"),
    ("M", lambda t: str(t.month)),
    ("dddd", lambda t: t.strftime("%A")),
    ("ddd", lambda t: t.strftime("%a")),
    ("dd", lambda t: f"{t.day:02d}"),
    ("d", lambda t: str(t.day)),
    ("HH", lambda t: f"{t.hour:02d}"),
    ("H", lambda t: str(t.hour)),
    ("hh", lambda t: f"{(t.hour % 12) or 12:02d}"),
    ("h", lambda t: str((t.hour % 12) or 12)),
    ("mm", lambda t: f"{t.minute:02d}"),
    ("m", lambda t: str(t.minute)),
    ("ss", lambda t: f"{t.second:02d}"),
    ("s", lambda t: str(t.second)),
    ("fffffff", lambda t: f"{t.microsecond * 10:07d}"),
    ("ffffff", lambda t: f"{t.microsecond:06d}"),
    ("fff", lambda t: f"{t.microsecond // 1000:03d}"),
    ("ff", lambda t: f"{t.microsecond // 10000:02d}"),
    ("f", lambda t: str(t.microsecond // 100000)),
    ("tt", lambda t: "AM" if t.hour < 12 else "PM"),
    ("K", lambda t: "Z"),
]
DEFAULT_DATETIME_FORMAT = "yyyy-MM-ddTHH-mm-ssK"  # the host's: no colons, safe in blob names
# .NET standard formats (one character), as the invariant culture spells them.
_STANDARD_FORMATS = {
    "d": "MM/dd/yyyy",
    "D": "dddd, dd MMMM yyyy",
    "f": "dddd, dd MMMM yyyy HH:mm",
    "F": "dddd, dd MMMM yyyy HH:mm:ss",
    "g": "MM/dd/yyyy HH:mm",
    "G": "MM/dd/yyyy HH:mm:ss",
    "m": "MMMM dd",
    "M": "MMMM dd",
    "o": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "O": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "r": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "R": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "s": "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
    "t": "HH:mm",
    "T": "HH:mm:ss",
    "u": "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
    "U": "dddd, dd MMMM yyyy HH:mm:ss",
    "y": "yyyy MMMM",
    "Y": "yyyy MMMM",
}


_SETTING_REF = re.compile(r"%([^%]+)%")


def resolve_settings(value: str, settings: Mapping[str, str]) -> str:
    """`value` with its `%Name%` references replaced by app settings, as binding properties
    allow; BindingExpressionError naming a setting that does not exist."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in settings:
            raise BindingExpressionError(
                f"'%{name}%' does not resolve to a value (no app setting {name})"
            )
        return settings[name]

    return _SETTING_REF.sub(lookup, value)


def format_datetime(moment: datetime, dotnet_format: str) -> str:
    """`moment` (UTC) in a .NET format: a standard one (one character, `G`, `o`...) or a custom
    one; characters in quotes or after `\\` are kept, `%` marks a lone custom specifier."""
    dotnet_format = _STANDARD_FORMATS.get(dotnet_format, dotnet_format)
    out: list[str] = []
    i = 0
    while i < len(dotnet_format):
        char = dotnet_format[i]
        if char in "'\"":
            end = dotnet_format.find(char, i + 1)
            end = len(dotnet_format) if end < 0 else end
            out.append(dotnet_format[i + 1 : end])
            i = end + 1
            continue
        if char == "\\" and i + 1 < len(dotnet_format):
            out.append(dotnet_format[i + 1])
            i += 2
            continue
        if char == "%":
            i += 1
            continue
        for part, render in _DATE_PARTS:
            if dotnet_format.startswith(part, i):
                out.append(render(moment))
                i += len(part)
                break
        else:
            out.append(char)
            i += 1
    return "".join(out)


def format_guid(value: uuid.UUID, dotnet_format: str | None) -> str:
    """A GUID in .NET's standard formats: D (default), N, B, P, X."""
    text = str(value)
    match (dotnet_format or "D").upper():
        case "D":
            return text
        case "N":
            return value.hex
        case "B":
            return "{" + text + "}"
        case "P":
            return "(" + text + ")"
        case "X":
            h = value.hex
            tail = ",".join(f"0x{h[i : i + 2]}" for i in range(16, 32, 2))
            return f"{{0x{h[:8]},0x{h[8:12]},0x{h[12:16]},{{{tail}}}}}"
    raise BindingExpressionError(f"GUID format {dotnet_format!r} is not one of D, N, B, P, X")


@dataclass(frozen=True)
class SystemValues:
    """The values `{rand-guid}` and `{DateTime}` take in one invocation, fixed per invocation
    so two bindings of one call see the same GUID and time. (The Functions host draws a new
    GUID and reads the clock at each occurrence instead.)"""

    utc_now: datetime
    rand_guid: uuid.UUID

    @classmethod
    def now(cls) -> SystemValues:
        return cls(datetime.now(UTC), uuid.uuid4())


def parameters_of(template: str) -> list[str]:
    """The `{...}` parameter names a template uses, in order (system names included);
    BindingExpressionError for a malformed one, as the host refuses it at start-up."""
    names: list[str] = []
    for match in _TOKEN.finditer(template):
        if match.group(1) is not None:
            names.append(_parameter(match.group(1), template)[0])
        elif match.group(0) in "{}":
            raise BindingExpressionError(f"unbalanced brace in binding expression {template!r}")
    return names


def _parameter(inner: str, template: str) -> tuple[str, str | None]:
    """The name and the format (after the first colon) of one `{...}`."""
    name, colon, dotnet_format = inner.partition(":")
    if not _PARAMETER.match(name) and name.lower() not in _BUILTINS:
        raise BindingExpressionError(
            f"invalid parameter {inner!r} in binding expression {template!r}"
        )
    return name, dotnet_format if colon else None


def _lookup(data: Mapping[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            raise KeyError(dotted)
        if part in value:  # an exact match first, as a JSON object's case-insensitive lookup
            value = value[part]
            continue
        key = next((k for k in value if str(k).lower() == part.lower()), None)
        if key is None:
            raise KeyError(dotted)
        value = value[key]
    return value


def _as_text(value: Any, dotnet_format: str | None) -> str:
    if isinstance(value, datetime):
        return format_datetime(value.astimezone(UTC), dotnet_format or DEFAULT_DATETIME_FORMAT)
    if isinstance(value, bool):
        return "True" if value else "False"  # as .NET writes booleans
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))  # as .NET writes a JSON number: 2.0 is "2"
    if isinstance(value, (dict, list)):
        raise BindingExpressionError("an object or array cannot fill a binding expression")
    return str(value)


def resolve(
    template: str,
    data: Mapping[str, Any],
    system: SystemValues | None = None,
    escape: Callable[[str], str] | None = None,
) -> str:
    """`template` with each `{...}` replaced from `data` (binding data first, then the system
    values); BindingExpressionError names a parameter that has no value. `escape` applies to
    each value from the binding data (an OData filter quotes them, so data cannot rewrite it)."""
    values = system or SystemValues.now()

    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "{{":
            return "{"
        if whole == "}}":
            return "}"
        inner = match.group(1)
        if inner is None:
            raise BindingExpressionError(f"unbalanced brace in binding expression {template!r}")
        name, dotnet_format = _parameter(inner, template)
        lowered = name.lower()
        # The host's built-ins: `sys.*` always; `rand-guid` and `DateTime` only when the
        # binding data lacks the name, unless a format follows (then always the built-in).
        builtin = lowered in ("sys.randguid", "sys.utcnow") or (
            lowered in ("rand-guid", "datetime") and dotnet_format is not None
        )
        if builtin or (lowered in ("rand-guid", "datetime") and not _has(data, name)):
            if lowered in ("rand-guid", "sys.randguid"):
                return format_guid(values.rand_guid, dotnet_format or None)
            return _as_text(values.utc_now, dotnet_format or None)
        try:
            value = _lookup(data, name)
        except KeyError:
            raise BindingExpressionError(
                f"no value for named parameter {name!r} in binding expression {template!r} "
                f"(binding data has: {', '.join(sorted(map(str, data))) or 'nothing'})"
            ) from None
        text = _as_text(value, dotnet_format or None)
        return escape(text) if escape is not None else text

    return _TOKEN.sub(replace, template)


def _has(data: Mapping[str, Any], name: str) -> bool:
    try:
        _lookup(data, name)
    except KeyError:
        return False
    return True


def binding_data_of(payload: Any) -> dict[str, Any]:
    """What a JSON payload adds to the binding data: its top-level properties, when an object."""
    return dict(payload) if isinstance(payload, Mapping) else {}


@dataclass(frozen=True)
class BlobPathPattern:
    """A blob trigger's `path`: a literal container and a blob-name pattern with `{name}`
    parameters, which match any characters (slashes too, so `{name}` takes sub-folders)."""

    container: str
    blob_pattern: str
    _regex: re.Pattern[str]
    parameters: tuple[str, ...]

    @classmethod
    def parse(cls, path: str) -> BlobPathPattern:
        container, blob_pattern = split_blob_path(path, allow_empty_blob=True)
        if "{" in container or "}" in container:
            raise BindingExpressionError(
                f"blob path {path!r}: the container name cannot hold a parameter"
            )
        parameters: list[str] = []
        position = 0
        regex = ""
        for match in _TOKEN.finditer(blob_pattern):
            regex += re.escape(blob_pattern[position : match.start()])
            whole, inner = match.group(0), match.group(1)
            if whole in ("{{", "}}"):
                regex += re.escape(whole[0])
            elif inner is None:
                raise BindingExpressionError(f"unbalanced brace in blob path {path!r}")
            else:
                name = inner
                if not _PARAMETER.match(name) or "." in name:
                    raise BindingExpressionError(
                        f"invalid parameter {inner!r} in blob path {path!r}"
                    )
                if name in parameters:
                    raise BindingExpressionError(f"parameter {name!r} appears twice in {path!r}")
                parameters.append(name)
                # Greedy, as the host's `(?<name>.*)`: `{name}.{ext}` splits at the last dot.
                regex += f"(?P<p{len(parameters) - 1}>.*)"
            position = match.end()
        regex += re.escape(blob_pattern[position:])
        if not blob_pattern:
            regex = ".+"
        return cls(container, blob_pattern, re.compile(f"^{regex}$", re.DOTALL), tuple(parameters))

    @property
    def prefix(self) -> str:
        """The literal start of the blob names that can match (for listing)."""
        literal: list[str] = []
        position = 0
        for match in _TOKEN.finditer(self.blob_pattern):
            literal.append(self.blob_pattern[position : match.start()])
            if match.group(1) is not None:
                return "".join(literal)
            literal.append(match.group(0)[0])  # an escaped brace
            position = match.end()
        return "".join(literal) + self.blob_pattern[position:]

    def match(self, blob_name: str) -> dict[str, str] | None:
        """The parameters' values when `blob_name` matches, else None."""
        found = self._regex.match(blob_name)
        if found is None:
            return None
        return {name: found.group(f"p{i}") for i, name in enumerate(self.parameters)}


def split_blob_path(path: str, *, allow_empty_blob: bool = False) -> tuple[str, str]:
    """`container/blob/name` into its container and blob name."""
    container, slash, blob = path.strip().lstrip("/").partition("/")
    if not container or (not slash and not allow_empty_blob) or (not blob and not allow_empty_blob):
        raise BindingExpressionError(
            f"blob path {path!r} must be 'container/blob' (e.g. 'samples/{{name}}.txt')"
        )
    return container, blob
