"""App settings (local.settings.json, the environment) and host.json, as the host reads them."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from orchestration.bindings.expressions import BindingExpressionError, resolve_settings

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$")


class HostConfigError(ValueError):
    """host.json, local.settings.json or a setting reference is invalid."""


def parse_timespan(value: str | int | float) -> timedelta:
    """A .NET TimeSpan string (`[d.]hh:mm[:ss[.fffffff]]`) as a timedelta."""
    if isinstance(value, (int, float)):
        return timedelta(milliseconds=value)
    match = _TIMESPAN.match(value.strip())
    if not match:
        raise HostConfigError(f"{value!r} is not a TimeSpan (expected hh:mm:ss)")
    days, hours, minutes, seconds, fraction = match.groups()
    return timedelta(
        days=int(days or 0),
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds or 0),
        microseconds=int((fraction or "0").ljust(7, "0")) // 10,
    )


def format_timespan(value: timedelta) -> str:
    """A timedelta as a .NET TimeSpan string, `[d.]hh:mm:ss[.fff]`."""
    days, rest = divmod(value, timedelta(days=1))
    hours, rest = divmod(rest, timedelta(hours=1))
    minutes, rest = divmod(rest, timedelta(minutes=1))
    seconds = rest.total_seconds()
    text = f"{hours:02d}:{minutes:02d}:{int(seconds):02d}"
    if seconds != int(seconds):
        text += f"{seconds - int(seconds):.3f}"[1:]
    return f"{days}.{text}" if days else text


def load_local_settings(app_dir: Path, environ: MutableMapping[str, str]) -> dict[str, str]:
    """Copy local.settings.json `Values` into `environ`; a variable already set wins."""
    path = app_dir / "local.settings.json"
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise HostConfigError(f"{path}: {err}") from err
    if document.get("IsEncrypted"):
        raise HostConfigError(f"{path}: encrypted settings are not supported locally")
    values = {str(k): str(v) for k, v in (document.get("Values") or {}).items()}
    for key, value in values.items():
        environ.setdefault(key, value)
    return values


def resolve(value: str, settings: Mapping[str, str]) -> str:
    """Replace `%Name%` references with app settings, as binding expressions allow."""
    try:
        return resolve_settings(value, settings)
    except BindingExpressionError as err:
        raise HostConfigError(str(err)) from err


@dataclass(frozen=True)
class QueueOptions:
    """host.json extensions.queues, with the Functions host's defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval: timedelta = timedelta(minutes=1)
    visibility_timeout: timedelta = timedelta(0)
    max_dequeue_count: int = 5
    message_encoding: str = "base64"

    @classmethod
    def from_json(cls, section: Mapping[str, Any]) -> QueueOptions:
        """Read the section; unknown keys are ignored as the host ignores them."""
        lowered = {k.lower(): v for k, v in section.items()}
        batch = int(lowered.get("batchsize", 16))
        if not 1 <= batch <= 32:
            raise HostConfigError(f"extensions.queues.batchSize must be 1-32, got {batch}")
        encoding = str(lowered.get("messageencoding", "base64")).lower()
        if encoding not in ("base64", "none"):
            raise HostConfigError(f"extensions.queues.messageEncoding {encoding!r} unknown")
        polling = parse_timespan(lowered.get("maxpollinginterval", "00:01:00"))
        if polling < timedelta(milliseconds=100):
            raise HostConfigError("extensions.queues.maxPollingInterval must be >= 100 ms")
        return cls(
            batch_size=batch,
            new_batch_threshold=int(lowered.get("newbatchthreshold", batch // 2)),
            max_polling_interval=polling,
            visibility_timeout=parse_timespan(lowered.get("visibilitytimeout", "00:00:00")),
            max_dequeue_count=int(lowered.get("maxdequeuecount", 5)),
            message_encoding=encoding,
        )


@dataclass(frozen=True)
class BlobOptions:
    """host.json extensions.blobs (the blob extension 5.x), with its defaults."""

    max_degree_of_parallelism: int = 8 * (os.cpu_count() or 1)
    """Concurrent blob-triggered invocations in one host process."""
    poison_blob_threshold: int = 5
    """Attempts at a blob before its poison message is sent."""

    @classmethod
    def from_json(cls, section: Mapping[str, Any]) -> BlobOptions:
        """Read the section; unknown keys are ignored as the host ignores them."""
        lowered = {k.lower(): v for k, v in section.items()}
        defaults = cls()
        parallelism = int(lowered.get("maxdegreeofparallelism", defaults.max_degree_of_parallelism))
        threshold = int(lowered.get("poisonblobthreshold", defaults.poison_blob_threshold))
        if parallelism < 1:
            raise HostConfigError("extensions.blobs.maxDegreeOfParallelism must be >= 1")
        if threshold < 1:
            raise HostConfigError("extensions.blobs.poisonBlobThreshold must be >= 1")
        return cls(max_degree_of_parallelism=parallelism, poison_blob_threshold=threshold)


def _function_timeout(value: Any) -> timedelta | None:
    # "-1" means unbounded on dedicated plans; absent means unbounded locally, as in Core Tools.
    if value is None or str(value).strip() == "-1":
        return None
    timeout = parse_timespan(str(value))
    if timeout <= timedelta(0):
        raise HostConfigError(f"functionTimeout must be positive, got {value!r}")
    return timeout


_LOG_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "information": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "none": logging.CRITICAL + 10,
}


@dataclass(frozen=True)
class HostJson:
    """The parts of host.json the local host uses; `raw` keeps the rest for extensions."""

    raw: Mapping[str, Any] = field(default_factory=dict)
    route_prefix: str = "api"
    queues: QueueOptions = field(default_factory=QueueOptions)
    blobs: BlobOptions = field(default_factory=BlobOptions)
    function_timeout: timedelta | None = None

    def log_level(self, category: str) -> int:
        """host.json `logging.logLevel` for a category (or its closest dotted prefix, then
        `default`), as a `logging` level; Information when unset."""
        levels = (self.raw.get("logging") or {}).get("logLevel") or {}
        lowered = {str(k).lower(): v for k, v in levels.items()}
        parts = category.lower().split(".")
        for end in range(len(parts), 0, -1):
            name = ".".join(parts[:end])
            if name in lowered:
                return _LOG_LEVELS.get(str(lowered[name]).lower(), logging.INFO)
        return _LOG_LEVELS.get(str(lowered.get("default", "information")).lower(), logging.INFO)

    def extension_section(self, name: str) -> Mapping[str, Any]:
        """host.json `extensions.<name>` (case-insensitive), empty when absent."""
        extensions = self.raw.get("extensions") or {}
        for key, value in extensions.items():
            if key.lower() == name.lower() and isinstance(value, Mapping):
                return value
        return {}

    @classmethod
    def load(cls, app_dir: Path) -> HostJson:
        """Read DIR/host.json (defaults when absent)."""
        path = app_dir / "host.json"
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise HostConfigError(f"{path}: {err}") from err
        extensions = raw.get("extensions") if isinstance(raw, dict) else None
        if not isinstance(raw, dict) or not isinstance(extensions or {}, dict):
            raise HostConfigError(f"{path}: host.json and its extensions must be JSON objects")
        for name, section in (extensions or {}).items():
            if section is not None and not isinstance(section, dict):
                raise HostConfigError(f"{path}: extensions.{name} must be a JSON object")
        version = raw.get("version")
        if version is not None and version != "2.0":
            raise HostConfigError(f'{path}: version must be "2.0", got {version!r}')
        probe = cls(raw=raw)
        http = probe.extension_section("http")
        prefix = str(http.get("routePrefix", "api")).strip("/")
        return cls(
            raw=raw,
            route_prefix=prefix,
            function_timeout=_function_timeout(raw.get("functionTimeout")),
            queues=QueueOptions.from_json(probe.extension_section("queues")),
            blobs=BlobOptions.from_json(probe.extension_section("blobs")),
        )


def current_settings() -> dict[str, str]:
    """The app settings as the functions see them: the process environment."""
    return dict(os.environ)
