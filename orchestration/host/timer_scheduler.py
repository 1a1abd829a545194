"""Timer triggers: NCRONTAB (seconds first) and TimeSpan schedules, run on one host at a time.

As the Functions host's singleton listener does, a timer runs only in the host process that
holds a blob lease on `azure-webjobs-hosts/locks/<hostId>/<function>.Listener`; the others
retry taking the lease, so each occurrence fires once across processes. The schedule status
blob (Last/Next) lets a host that takes over, or restarts, fire a missed occurrence as past due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from azure.functions.timer import TimerRequest
from croniter import croniter  # type: ignore[import-untyped]

from orchestration.host.app_loader import FunctionSpec
from orchestration.host.bindings import BindingConfigError, HostContext, Listener, TriggerHandler
from orchestration.host.settings import HostConfigError, parse_timespan
from orchestration.host.storage import HOSTS_CONTAINER, StorageAccount

log = logging.getLogger("orchestration.host.timer")

LEASE_SECONDS = 15
RENEW_EVERY = 5.0
ACQUIRE_RETRY = 3.0


class Schedule(Protocol):
    """When a timer fires."""

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment`."""


@dataclass(frozen=True)
class CronSchedule:
    """An NCRONTAB expression: `sec min hour day month day-of-week` (five fields: no seconds)."""

    expression: str
    zone: tzinfo = UTC

    def __post_init__(self) -> None:
        fields = self.expression.split()
        valid = len(fields) in (5, 6) and croniter.is_valid(
            self.expression, second_at_beginning=len(fields) == 6
        )
        if not valid:
            raise BindingConfigError(
                f"schedule {self.expression!r} is not a valid NCRONTAB expression "
                "(six fields, seconds first: '*/5 * * * * *')"
            )

    def next_after(self, moment: datetime) -> datetime:
        six = len(self.expression.split()) == 6
        local = moment.astimezone(self.zone)
        following: datetime = croniter(self.expression, local, second_at_beginning=six).get_next(
            datetime
        )
        return following.astimezone(UTC)


@dataclass(frozen=True)
class TimeSpanSchedule:
    """A constant interval (`hh:mm:ss`)."""

    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval


def parse_schedule(expression: str, zone: tzinfo = UTC) -> Schedule:
    """A timer's schedule from its NCRONTAB or TimeSpan string."""
    text = expression.strip()
    if " " not in text and ":" in text:
        try:
            interval = parse_timespan(text)
        except HostConfigError as err:
            raise BindingConfigError(str(err)) from err
        if interval <= timedelta(0):
            raise BindingConfigError(f"schedule {expression!r} must be a positive interval")
        return TimeSpanSchedule(interval)
    return CronSchedule(text, zone)


def _zone() -> tzinfo:
    name = os.environ.get("WEBSITE_TIME_ZONE") or os.environ.get("TZ")
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except Exception:  # unknown zone names fall back to UTC, as on Linux plans
        return UTC


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class TimerTriggerHandler(TriggerHandler):
    """`timerTrigger`: one singleton listener per function."""

    def _schedule(self, function: FunctionSpec, host: HostContext) -> Schedule:
        expression = function.trigger.get("schedule")
        if not expression:
            raise BindingConfigError("timer trigger has no schedule")
        return parse_schedule(host.resolve(str(expression)), _zone())

    def validate(self, function: FunctionSpec, host: HostContext) -> None:
        self._schedule(function, host)
        host.connection_string(None)

    def create_listener(self, function: FunctionSpec, host: HostContext) -> Listener:
        return TimerListener(function, self._schedule(function, host), host.storage_for(), host)

    def binding_data_names(self, function: FunctionSpec, host: HostContext) -> set[str] | None:
        return {"IsPastDue"}


class TimerListener:
    """Fires one timer function on its schedule while holding the function's listener lease."""

    def __init__(
        self, function: FunctionSpec, schedule: Schedule, account: StorageAccount, host: HostContext
    ) -> None:
        self.function = function
        self.schedule = schedule
        self.account = account
        self.host = host
        self.lock_blob = f"locks/{host.host_id}/Host.Functions.{function.name}.Listener"
        self.status_blob = f"timers/{host.host_id}/Host.Functions.{function.name}/status"
        self.run_on_startup = bool(function.trigger.get("runOnStartup", False))
        self._interrupt = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start competing for the lease and, once held, firing."""
        self._task = asyncio.create_task(self._run(), name=f"timer:{self.function.name}")

    async def stop(self, grace: float) -> None:
        """Stop firing; a running invocation gets `grace` seconds; release the lease."""
        self._stopping = True
        self._interrupt.set()
        if self._task is None:
            return
        done, _ = await asyncio.wait({self._task}, timeout=grace)
        if not done:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless interrupted; True when the full time passed."""
        try:
            await asyncio.wait_for(self._interrupt.wait(), max(seconds, 0))
        except TimeoutError:
            return True
        return False

    async def _run(self) -> None:
        first_lead = True
        while not self._stopping:
            try:
                lease = await self.account.acquire_lease(
                    HOSTS_CONTAINER, self.lock_blob, LEASE_SECONDS
                )
            except Exception as err:
                log.warning(
                    "Timer '%s': taking the listener lease failed: %s", self.function.name, err
                )
                lease = None
            if lease is None:
                await self._sleep(ACQUIRE_RETRY)
                continue
            renewal = asyncio.create_task(self._renew(lease))
            try:
                await self._lead(run_on_startup=first_lead and self.run_on_startup)
                first_lead = False
            except Exception:
                log.exception("Timer '%s' listener failed; retrying", self.function.name)
                await self._sleep(ACQUIRE_RETRY)
            finally:
                renewal.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewal
                await asyncio.shield(
                    self.account.release_lease(HOSTS_CONTAINER, self.lock_blob, lease)
                )
            if not self._stopping:
                self._interrupt.clear()

    async def _renew(self, lease: str) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY)
            if not await self.account.renew_lease(HOSTS_CONTAINER, self.lock_blob, lease):
                log.warning("Timer '%s' lost its listener lease", self.function.name)
                self._interrupt.set()
                return

    async def _lead(self, run_on_startup: bool) -> None:
        status = await self.account.read_json(HOSTS_CONTAINER, self.status_blob) or {}
        last = _parse(status.get("Last"))
        missed = _parse(status.get("Next"))
        now = datetime.now(UTC)
        if missed is not None and missed < now:
            await self._fire(past_due=True, status=status)
            last = missed
        elif run_on_startup:
            await self._fire(past_due=False, status=status)
        while not self._interrupt.is_set():
            now = datetime.now(UTC)
            due = self.schedule.next_after(max(now, last) if last else now)
            status = {"Last": _iso(last), "Next": _iso(due), "LastUpdated": _iso(now)}
            await self.account.write_json(HOSTS_CONTAINER, self.status_blob, status)
            if not await self._sleep((due - datetime.now(UTC)).total_seconds()):
                return
            await self._fire(past_due=False, status=status)
            last = due

    async def _fire(self, past_due: bool, status: dict[str, Any]) -> None:
        request = TimerRequest(
            past_due=past_due, schedule_status=dict(status), schedule={"AdjustForDST": True}
        )
        await self.host.invoker.invoke(self.function, request, {"IsPastDue": past_due})
