"""Engine settings, from host.json's `extensions.durableTask` and the app settings."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from orchestration.core.versioning import (
    VersionFailureStrategy,
    VersioningPolicy,
    VersionMatchStrategy,
)
from orchestration.storage.names import HubNames

DEFAULT_HUB = "OrchestrationHub"
_SETTING = re.compile(r"^%([^%]+)%$")


def _resolve(value: str) -> str:
    match = _SETTING.match(value)
    if match:
        return os.environ.get(match.group(1), value)
    return value


def _timespan(value: Any, default: timedelta) -> timedelta:
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    parts = str(value).split(":")
    if len(parts) != 3:
        raise ValueError(f"expected a TimeSpan like '00:00:30', got {value!r}")
    days_hours, minutes, seconds = parts
    days, _, hours = days_hours.rpartition(".")
    return timedelta(
        days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=float(seconds)
    )


def _session_lifetime(minutes: Any) -> timedelta:
    value = float(minutes)
    if not 1 <= value <= 24 * 60:
        raise ValueError("extensions.durableTask.dashboard.sessionMinutes must be 1 to 1440")
    return timedelta(minutes=value)


@dataclass(frozen=True)
class EngineSettings:
    """What the engine reads from host.json (`extensions.durableTask`) and the environment."""

    hub_name: str = DEFAULT_HUB
    connection_name: str = "AzureWebJobsStorage"
    route_prefix: str = "api"
    repair_after: timedelta = timedelta(minutes=5)
    timer_sweep_schedule: str = "*/15 * * * * *"
    payload_threshold: int = 16_000
    max_request_bytes: int = 4 * 1024 * 1024
    management_auth: str = ""  # "", "anonymous", "function" or "admin"; "" follows the app
    local_activities: bool = True
    local_activity_max_batch: int = 8
    direct_results: bool = True
    max_dequeue_count: int = 5
    # host.json extensions.queues.messageEncoding: what activities' queue outputs write.
    queue_message_encoding: str = "base64"
    # host.json functionTimeout: no orchestrator step may run longer (5 minutes when unset).
    step_limit: timedelta = timedelta(minutes=5)
    # defaultVersion, versionMatchStrategy, versionFailureStrategy (DF's names).
    versioning: VersioningPolicy = field(default_factory=VersioningPolicy)
    # Ours: when events a version check rejected are visible on the queue again.
    version_reject_delay: timedelta = timedelta(seconds=5)
    # Ours: `dashboard.enabled` serves the dashboard (behind the management API's keys);
    # `dashboard.sessionMinutes` is how long a page's sign-in lasts.
    dashboard: bool = True
    dashboard_session: timedelta = timedelta(hours=1)

    @property
    def names(self) -> HubNames:
        return HubNames(self.hub_name)

    @property
    def connection_string(self) -> str:
        value = os.environ.get(self.connection_name)
        if not value:
            raise RuntimeError(
                f"App setting {self.connection_name!r} is not set: it must hold the storage "
                f"connection string (UseDevelopmentStorage=true for Azurite)."
            )
        return value

    @classmethod
    def from_host_json(cls, app_dir: Path) -> EngineSettings:
        path = app_dir / "host.json"
        config: dict[str, Any] = {}
        if path.is_file():
            config = json.loads(path.read_text(encoding="utf-8"))
        extensions = config.get("extensions") or {}
        durable = extensions.get("durableTask") or {}
        http = extensions.get("http") or {}
        storage = durable.get("storageProvider") or {}
        queues = extensions.get("queues") or {}
        dashboard = durable.get("dashboard") or {}
        return cls(
            hub_name=_resolve(str(durable.get("hubName", DEFAULT_HUB))),
            connection_name=str(storage.get("connectionStringName", "AzureWebJobsStorage")),
            route_prefix=str(http.get("routePrefix", "api")).strip("/"),
            repair_after=_timespan(durable.get("repairAfter"), timedelta(minutes=5)),
            timer_sweep_schedule=str(durable.get("timerSweepSchedule", "*/15 * * * * *")),
            payload_threshold=int(durable.get("payloadThresholdChars", 16_000)),
            max_request_bytes=int(durable.get("maxRequestBytes", 4 * 1024 * 1024)),
            management_auth=str(durable.get("managementAuthLevel", "")).lower(),
            local_activities=bool(durable.get("localActivities", True)),
            local_activity_max_batch=int(durable.get("localActivityMaxBatch", 8)),
            direct_results=bool(durable.get("directResults", True)),
            max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
            queue_message_encoding=_message_encoding(queues.get("messageEncoding")),
            step_limit=_step_limit(config.get("functionTimeout")),
            versioning=versioning_policy(durable),
            version_reject_delay=_timespan(durable.get("versionRejectDelay"), timedelta(seconds=5)),
            dashboard=bool(dashboard.get("enabled", True)),
            dashboard_session=_session_lifetime(dashboard.get("sessionMinutes", 60)),
        )


def _message_encoding(value: Any) -> str:
    encoding = str(value if value is not None else "base64").lower()
    if encoding not in ("base64", "none"):
        raise ValueError(
            f"host.json extensions.queues.messageEncoding must be 'base64' or 'none', not {value!r}"
        )
    return encoding


def _step_limit(function_timeout: Any) -> timedelta:
    default = timedelta(minutes=5)
    if function_timeout is None or str(function_timeout).strip() == "-1":
        return default
    return _timespan(function_timeout, default)


_PREFIX = "host.json extensions.durableTask."


def versioning_policy(durable: dict[str, Any]) -> VersioningPolicy:
    """DF's versioning settings, checked: a wrong value stops the app at start-up."""
    version = durable.get("defaultVersion")
    if version is not None and not isinstance(version, str):
        raise ValueError(
            f'{_PREFIX}defaultVersion must be a string such as "1.0" (or null), got {version!r}'
        )
    return VersioningPolicy(
        default_version=_resolve(version).strip() or None if version else None,
        match=_choice(durable, "versionMatchStrategy", VersionMatchStrategy.CURRENT_OR_OLDER),
        failure=_choice(durable, "versionFailureStrategy", VersionFailureStrategy.REJECT),
    )


_Strategy = TypeVar("_Strategy", VersionMatchStrategy, VersionFailureStrategy)


def _choice(durable: dict[str, Any], key: str, default: _Strategy) -> _Strategy:
    value = durable.get(key)
    if value is None:
        return default
    kind = type(default)
    for member in kind:
        if isinstance(value, str) and value.strip().lower() == member.value.lower():
            return member
    allowed = ", ".join(member.value for member in kind)
    raise ValueError(f"{_PREFIX}{key} must be one of {allowed}; got {value!r}")
