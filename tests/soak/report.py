"""The soak's printed figures: a table of throughput and memory over time, then the verdicts."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from tests.soak.judge import MIB
from tests.soak.run import Report
from tests.soak.samples import Sample


def rows(samples: Sequence[Sample], seconds: float) -> list[list[Sample]]:
    """Consecutive samples grouped into rows of at least `seconds` each, never across phases."""
    grouped: list[list[Sample]] = []
    span = 0.0
    for sample in samples:
        if not grouped or span >= seconds or grouped[-1][-1].phase != sample.phase:
            grouped.append([])
            span = 0.0
        grouped[-1].append(sample)
        span += sample.seconds
    return grouped


def _row(group: list[Sample], hosts: int) -> list[str]:
    seconds = sum(s.seconds for s in group) or 1.0
    last = group[-1]
    p50s = [s.latency_p50 for s in group if s.latency_p50 is not None]
    p95s = [s.latency_p95 for s in group if s.latency_p95 is not None]
    cells = [
        f"{last.t / 60:5.1f}",
        last.phase,
        f"{sum(s.started for s in group) / seconds:5.2f}",
        f"{sum(s.completed for s in group) / seconds:5.2f}",
        f"{sum(s.activities for s in group) / seconds:5.1f}",
        f"{max(s.in_flight for s in group):4d}",
        f"{sum(s.wrong for s in group)}",
        f"{sum(s.shed for s in group)}",
        f"{statistics.median(p50s):.1f}/{max(p95s):.1f}" if p50s else "-",
    ]
    for index in range(hosts):
        cpu = statistics.mean(s.hosts[index].cpu_percent for s in group)
        cells.append(f"{last.hosts[index].rss_kib / MIB:6.1f} {cpu:3.0f}%")
    cpu = statistics.mean(s.azurite_cpu_percent for s in group)
    cells.append(f"{last.azurite_rss_kib / MIB:6.1f} {cpu:3.0f}%")
    cells.append(f"{statistics.mean(s.harness_cpu_percent for s in group):3.0f}%")
    return cells


def table(report: Report, seconds: float) -> str:
    """Throughput and memory over time, one row per `seconds` (RSS at the row's end, CPU its
    mean over the row)."""
    if not report.samples:
        return "(no samples)"
    hosts = len(report.samples[0].hosts)
    header = ["min", "phase", "start/s", "done/s", "act/s", "inflt", "wrong", "shed", "lat s"]
    header += [f"{h.name} MiB cpu" for h in report.samples[0].hosts]
    header += ["azurite MiB cpu", "harness cpu"]
    body = [_row(group, hosts) for group in rows(report.samples, seconds)]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in body]
    head = "  ".join(cell.rjust(w) for cell, w in zip(header, widths, strict=True))
    return "\n".join([head, *lines])


def summary(report: Report) -> str:
    verdict = report.verdict
    lines = [
        f"soak on hub {report.hub}: {'PASSED' if report.ok else 'FAILED'}",
        f"  offered {report.offered}, started {report.started}, shed {report.shed}; completed "
        f"{report.completed} (+{report.sub_orchestrations} sub-orchestrations) {report.by_kind}",
        f"  wrong {report.wrong}, stuck {report.stuck}, late {report.late}; events raised "
        f"{report.events_raised}, start failures {report.start_failures}, raise failures "
        f"{report.event_raise_failures}, poison {report.poison_messages}",
        f"  entity counters [expected, actual]: {report.counters or '(no tallies)'}",
        f"  checked {verdict.get('instances_checked')}: as expected "
        f"{verdict.get('completed_as_expected')}, history events "
        f"{verdict.get('history_events')}, activity keys {verdict.get('activity_keys')} "
        f"(never run {verdict.get('activities_never_run')}, re-runs "
        f"{verdict.get('activity_reruns')})",
        f"  host exit codes {report.host_exit_codes}, tracebacks in host logs "
        f"{report.tracebacks_in_host_logs}; {report.seconds_total} s in all",
        f"  memory bound: {report.memory_bound}",
    ]
    lines += [f"  {m.line()}" for m in report.memory]
    if report.azurite_memory is not None:
        lines.append(
            f"  {report.azurite_memory.line(judged=False)} (not judged: the emulator keeps "
            "its tables in memory)"
        )
    if report.throughput is not None:
        lines.append(f"  {report.throughput.line()}")
    lines += [f"  FAILURE {failure}" for failure in report.failures]
    lines += [f"  PROBLEM {problem}" for problem in verdict.get("problems", [])[:20]]
    return "\n".join(lines)
