"""The soak's samples: what happened in each period, and what every process used at its end."""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field

from tests.soak import procs
from tests.soak.judge import MIB


@dataclass
class Period:
    """What happened since the last sample (the run counts into it)."""

    started: int = 0
    completed: int = 0
    activities: int = 0
    wrong: int = 0
    shed: int = 0
    latencies: list[float] = field(default_factory=list)


@dataclass
class HostSample:
    name: str
    rss_kib: int
    cpu_percent: float
    fds: int
    processes: list[tuple[int, int]]  # (pid, RSS KiB) of the host and each worker


@dataclass
class Sample:
    """One period: counts over it, figures at its end (`t`: seconds since the load began)."""

    t: float
    phase: str  # "warm-up", "measure" or "drain"
    seconds: float
    started: int
    completed: int
    activities: int
    wrong: int
    shed: int
    in_flight: int
    latency_p50: float | None
    latency_p95: float | None
    hosts: list[HostSample]
    azurite_rss_kib: int
    azurite_cpu_percent: float
    harness_rss_kib: int
    harness_cpu_percent: float

    def line(self) -> str:
        hosts = " ".join(
            f"{h.name} {h.rss_kib / MIB:.0f} MiB {h.cpu_percent:.0f}%" for h in self.hosts
        )
        return (
            f"t={self.t:4.0f}s {self.phase:<7} started {self.started:3d} completed "
            f"{self.completed:3d} in flight {self.in_flight:3d} wrong {self.wrong} shed "
            f"{self.shed} | {hosts} | azurite {self.azurite_rss_kib / MIB:.0f} MiB "
            f"{self.azurite_cpu_percent:.0f}% | harness {self.harness_cpu_percent:.0f}%"
        )


@dataclass
class Meter:
    """Reads the processes' figures; CPU is a percentage of one core since the last reading."""

    _cpu: dict[str, tuple[float, float]] = field(default_factory=dict)

    def _cpu_percent(self, key: str, cpu_seconds: float, now: float) -> float:
        previous = self._cpu.get(key)
        self._cpu[key] = (cpu_seconds, now)
        if previous is None or now <= previous[1]:
            return 0.0
        # A restarted worker's CPU starts again from 0: never below 0.
        return round(max(0.0, 100 * (cpu_seconds - previous[0]) / (now - previous[1])), 1)

    def measure(
        self,
        period: Period,
        *,
        phase: str,
        t: float,
        seconds: float,
        in_flight: int,
        hosts: list[tuple[str, int | None]],
        azurite_pid: int | None,
    ) -> Sample:
        """The sample closing `period`; `hosts` are (name, pid or None when it is down)."""
        parent_of = procs.parents()
        host_samples = []
        for name, pid in hosts:
            tree = procs.tree_usage(pid, parent_of)
            host_samples.append(
                HostSample(
                    name,
                    tree.rss_kib,
                    self._cpu_percent(name, tree.cpu_seconds, t),
                    tree.fds,
                    [(p.pid, p.rss_kib) for p in tree.processes],
                )
            )
        azurite = procs.tree_usage(azurite_pid, parent_of)
        harness = procs.usage_of(os.getpid())
        latencies = sorted(period.latencies)
        return Sample(
            t=round(t, 2),
            phase=phase,
            seconds=round(seconds, 2),
            started=period.started,
            completed=period.completed,
            activities=period.activities,
            wrong=period.wrong,
            shed=period.shed,
            in_flight=in_flight,
            latency_p50=round(statistics.median(latencies), 3) if latencies else None,
            latency_p95=round(latencies[int(0.95 * (len(latencies) - 1))], 3)
            if latencies
            else None,
            hosts=host_samples,
            azurite_rss_kib=azurite.rss_kib,
            azurite_cpu_percent=self._cpu_percent("azurite", azurite.cpu_seconds, t),
            harness_rss_kib=harness.rss_kib if harness else 0,
            harness_cpu_percent=self._cpu_percent(
                "harness", harness.cpu_seconds if harness else 0.0, t
            ),
        )
