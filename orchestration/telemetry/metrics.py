"""The engine's metrics, through the OpenTelemetry metrics API (the SDK is the app's choice).

Counts the workers keep anyway (cache hits, local and queued activities, storage calls by
operation) are read by observable instruments when the app's reader collects, so they cost
nothing on the hot path. Durations and instance outcomes are recorded as they happen, only
when a meter provider is configured. Queue depths are sampled by the timer sweep (every 15 s,
one call per queue) only then.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Observation

from orchestration.telemetry.providers import ProviderLookup
from orchestration.telemetry.tracing import OUTCOME, TASK_NAME, WHERE, complain

METER_NAME = "orchestration"

try:  # the API's stand-in until the app sets a provider (not exported by name)
    from opentelemetry.metrics._internal import _ProxyMeterProvider as _Proxy
except ImportError:  # pragma: no cover - a future API without it
    _Proxy = metrics.NoOpMeterProvider  # type: ignore[misc,assignment]

# Worker counters exposed as `durabletask.worker.*` (monotonic sums).
WORKER_COUNTERS = (
    "steps",
    "cache_hits",
    "cache_misses",
    "conflicts",
    "resends",
    "dropped",
    "local_activities",
    "queued_activities",
    "local_timers",
    "outage_retries",
)


@dataclass(frozen=True, slots=True)
class _Instruments:
    started: Counter
    finished: Counter
    activity_duration: Histogram
    step_duration: Histogram


@dataclass(slots=True)
class _Watched:
    hub: str
    stats: weakref.ref[Any]
    account_totals: Callable[[], Mapping[str, int]] | None


_watched: list[_Watched] = []
_depths: dict[str, dict[str, int]] = {}


def _build(meter: metrics.Meter) -> _Instruments:
    meter.create_observable_counter(
        "durabletask.storage.calls",
        callbacks=[_storage_calls],
        unit="{call}",
        description="Storage requests by operation (table.insert, queue.send, retry...).",
    )
    meter.create_observable_counter(
        "durabletask.worker.events",
        callbacks=[_worker_counts],
        unit="{event}",
        description="What the workers counted, by kind (cache_hits, local_activities...).",
    )
    meter.create_observable_gauge(
        "durabletask.queue.depth",
        callbacks=[_queue_depths],
        unit="{message}",
        description="Messages on each engine and poison queue (sampled each sweep).",
    )
    return _Instruments(
        started=meter.create_counter(
            "durabletask.orchestration.started",
            unit="{instance}",
            description="Instances whose first step committed.",
        ),
        finished=meter.create_counter(
            "durabletask.orchestration.finished",
            unit="{instance}",
            description="Executions that ended, by runtime status.",
        ),
        activity_duration=meter.create_histogram(
            "durabletask.activity.duration",
            unit="s",
            description="One activity execution, by name, outcome and where it ran.",
        ),
        step_duration=meter.create_histogram(
            "durabletask.orchestration.step.duration",
            unit="s",
            description="One committed orchestrator step, load to commit.",
        ),
    )


_lookup: ProviderLookup[_Instruments] = ProviderLookup(
    lambda: metrics.get_meter_provider(),
    (_Proxy, metrics.NoOpMeterProvider),
    lambda provider: _build(provider.get_meter(METER_NAME)),  # type: ignore[attr-defined]
)


def instruments() -> _Instruments | None:
    """The recording instruments, or None when the app configured no meter provider."""
    return _lookup.get()


def forget() -> None:
    """Look the provider up again at the next call (tests that swap providers)."""
    _lookup.forget()


def activity_done(name: str, outcome: str, local: bool, seconds: float) -> None:
    """Record one activity execution (when a meter provider is set)."""
    recorder = instruments()
    if recorder is None:
        return
    try:
        where = "local" if local else "queued"
        labels = {TASK_NAME: name, OUTCOME: outcome, WHERE: where}
        recorder.activity_duration.record(seconds, labels)
    except Exception as error:
        complain(error)


def watch(hub: str, stats: Any, account_totals: Callable[[], Mapping[str, int]] | None) -> None:
    """Expose a worker's counters (and its storage account's call totals) as metrics."""
    _watched[:] = [w for w in _watched if w.stats() is not None]
    _watched.append(_Watched(hub, weakref.ref(stats), account_totals))


def sampled_depths(hub: str, depths: Mapping[str, int | None]) -> None:
    """The sweep's reading of the hub's queue depths."""
    _depths[hub] = {queue: depth for queue, depth in depths.items() if depth is not None}


def _live() -> Iterable[tuple[_Watched, Any]]:
    for watched in _watched:
        stats = watched.stats()
        if stats is not None:
            yield watched, stats


def _storage_calls(_options: CallbackOptions) -> Iterable[Observation]:
    seen: set[int] = set()
    for watched, _stats in _live():
        if watched.account_totals is None:
            continue
        totals = watched.account_totals()
        if id(totals) in seen:  # workers sharing one account count once
            continue
        seen.add(id(totals))
        for operation, count in list(totals.items()):
            yield Observation(count, {"durabletask.hub": watched.hub, "operation": operation})


def _worker_counts(_options: CallbackOptions) -> Iterable[Observation]:
    sums: dict[tuple[str, str], int] = {}
    for watched, stats in _live():
        names = {f.name for f in fields(stats)}
        for kind in WORKER_COUNTERS:
            if kind in names:
                key = (watched.hub, kind)
                sums[key] = sums.get(key, 0) + int(getattr(stats, kind))
    for (hub, kind), value in sums.items():
        yield Observation(value, {"durabletask.hub": hub, "kind": kind})


def _queue_depths(_options: CallbackOptions) -> Iterable[Observation]:
    for hub, depths in list(_depths.items()):
        for queue, depth in depths.items():
            yield Observation(depth, {"durabletask.hub": hub, "queue": queue})
