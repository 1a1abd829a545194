"""Where a host's memory grows: the engine's caches, object counts and (optionally)
tracemalloc snapshot diffs, written from inside the host process by a background thread.

The chaos app starts it when SOAK_MEMWATCH names a folder (run the soak with
`--host-env SOAK_MEMWATCH=/tmp/memwatch`). Every SOAK_MEMWATCH_SECONDS (default 60) it
appends to `<folder>/memwatch-<pid>.txt` the RSS, the sizes of the orchestrator worker's
caches (live sessions, finished ids, the hub's recent states) and the object types whose
count grew most since the baseline (taken after SOAK_MEMWATCH_BASELINE seconds, default 120).
Further settings:
- SOAK_MEMWATCH_TRACE=1: also trace allocations (tracemalloc, 8 frames) and list the sites
  that grew most; this slows the host (it falls behind at the soak's default rate) and adds
  memory of its own: for finding a site, not for the soak's figures;
- SOAK_MEMWATCH_COLLECT=1: a full collection before each reading (garbage cycles not yet
  collected then do not show);
- SOAK_SESSION_CACHE=N: cap the worker's session cache at N (default 2000), to see where RSS
  levels off once the cache is full.
"""

from __future__ import annotations

import gc
import linecache
import os
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path

from orchestration.functions.orchestrator import OrchestratorWorker

FRAMES = 8
TOP = 15
IGNORED = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, linecache.__file__),
)


def _object_counts() -> Counter[str]:
    return Counter(type(o).__qualname__ for o in gc.get_objects())


def _workers() -> list[OrchestratorWorker]:
    return [o for o in gc.get_objects() if isinstance(o, OrchestratorWorker)]


def _caches(cap: int | None) -> str:
    parts = []
    for worker in _workers():
        cache = worker.cache
        if cap is not None:
            cache.size = cap
        parts.append(
            f"sessions {cache.sessions}/{cache.size}, finished ids {cache.finished_count}, "
            f"recent states {worker.mailbox.recent_count}"
        )
    return "; ".join(parts) or "no orchestrator worker yet"


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class _Watch:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.started = time.monotonic()
        self.trace = os.environ.get("SOAK_MEMWATCH_TRACE") == "1"
        self.collect = os.environ.get("SOAK_MEMWATCH_COLLECT") == "1"
        cap = os.environ.get("SOAK_SESSION_CACHE")
        self.cap = int(cap) if cap else None
        self.counts: Counter[str] = Counter()
        self.baseline: tracemalloc.Snapshot | None = None

    def _snapshot(self) -> tracemalloc.Snapshot | None:
        return tracemalloc.take_snapshot().filter_traces(IGNORED) if self.trace else None

    def begin(self) -> None:
        if self.trace:
            tracemalloc.start(FRAMES)

    def take_baseline(self) -> None:
        if self.collect:
            gc.collect()
        self.counts = _object_counts()
        self.baseline = self._snapshot()
        self.write(["-- baseline"])

    def report(self) -> None:
        if self.collect:
            gc.collect()
        # Counted before the snapshot, which holds a tuple per traced block.
        now = _object_counts()
        grown = Counter({k: now[k] - self.counts[k] for k in now if now[k] > self.counts[k]})
        lines = [f"-- object types grown most since the baseline ({sum(now.values())} in all):"]
        lines += [f"{n:+8d} {name}" for name, n in grown.most_common(TOP)]
        snapshot = self._snapshot()
        if snapshot is not None and self.baseline is not None:
            current, peak = tracemalloc.get_traced_memory()
            lines.append(
                f"-- traced {current / 1e6:.1f} MB (peak {peak / 1e6:.1f} MB); allocation "
                "sites grown most since the baseline:"
            )
            for stat in snapshot.compare_to(self.baseline, "traceback")[:TOP]:
                lines.append(f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks")
                lines += [f"      {line}" for line in stat.traceback.format()]
        self.write(lines)

    def write(self, lines: list[str]) -> None:
        head = (
            f"===== {time.monotonic() - self.started:.0f} s: RSS {_rss_kib() / 1024:.1f} MiB; "
            f"{_caches(self.cap)}"
        )
        with open(self.out, "a") as file:
            file.write("\n".join([head, *lines]) + "\n")


def _run(watch: _Watch, interval: float, baseline_after: float) -> None:
    time.sleep(baseline_after)
    watch.take_baseline()
    while True:
        time.sleep(interval)
        watch.report()


def start(folder: Path) -> None:
    """Watch this process from now on, reporting into `folder` in the background."""
    folder.mkdir(parents=True, exist_ok=True)
    watch = _Watch(folder / f"memwatch-{os.getpid()}.txt")
    watch.begin()
    interval = float(os.environ.get("SOAK_MEMWATCH_SECONDS", "60"))
    baseline_after = float(os.environ.get("SOAK_MEMWATCH_BASELINE", "120"))
    threading.Thread(
        target=_run, args=(watch, interval, baseline_after), name="memwatch", daemon=True
    ).start()
