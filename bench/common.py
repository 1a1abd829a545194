"""What every engine's bench script shares: the workloads, the result file and process helpers.

Standard library only: imported by our bench (the app's .venv) and by the peers' scripts
(bench/.venv-peers) alike.

Every script writes one JSON document (`EngineResult.to_json`) after each workload, so a
script stopped by its time budget still reports what it measured.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# -- the workloads (the same on every engine) -------------------------------------------
WARMUP = 10  # chain workflows run before any figure is taken
CHAIN_ONE_CALLER = 60  # chain3 workflows, one caller, start -> wait, one after the other
CHAIN_CALLERS = 16
CHAIN_MANY_CALLERS = 200  # chain3 workflows spread over CHAIN_CALLERS concurrent callers
FAN_OUTS = (100, 1000)
LATENCY_RUNS = 50  # 1-activity workflows on an idle system, one at a time
TIMERS = 200  # workflows, each sleeping a durable timer of TIMER_MIN_S..TIMER_MAX_S
TIMER_MIN_S, TIMER_MAX_S = 1.0, 10.0
TIMER_SEED = 7

# metric key -> (label, unit, higher is better)
METRICS: dict[str, tuple[str, str, bool]] = {
    "chain_1": ("chain3, 1 caller", "wf/s", True),
    "chain_16": (f"chain3, {CHAIN_CALLERS} callers", "wf/s", True),
    "fanout_100": ("fan-out/in 100", "s", False),
    "fanout_1000": ("fan-out/in 1000", "s", False),
    "latency_p50": ("1-activity latency p50", "ms", False),
    "latency_p99": ("1-activity latency p99", "ms", False),
    "timer_p50": ("timer lateness p50", "ms", False),
    "timer_p99": ("timer lateness p99", "ms", False),
}

# -- durable entities: ours only (the peers have none), operations/s, higher is better ------
ENTITY_SPREAD = 100  # entities in the spread workloads
ENTITY_METRICS: dict[str, str] = {
    "entity_hot_orch": "1 entity, from orchestrations",
    "entity_spread_orch": f"{ENTITY_SPREAD} entities, from orchestrations",
    "entity_hot_client": "1 entity, from clients",
    "entity_spread_client": f"{ENTITY_SPREAD} entities, from clients",
}
# Durable Functions' published entity throughput, for reference only (not measured here).
ENTITY_PUBLISHED: dict[str, str] = {
    "Durable Functions, Azure Storage backend": "64 ops/s",
    "Durable Functions, Netherite backend": "900-1,900 ops/s",
}
ENTITY_GOAL = 1000.0  # operations/s on one entity


def timer_delays() -> list[float]:
    """The TIMERS sleep durations in seconds, the same list for every engine."""
    rng = random.Random(TIMER_SEED)
    return [round(rng.uniform(TIMER_MIN_S, TIMER_MAX_S), 3) for _ in range(TIMERS)]


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# -- results ----------------------------------------------------------------------------
@dataclass
class EngineResult:
    """One engine's figures (METRICS keys), its settings and notes, saved as it goes."""

    engine: str
    out: Path
    status: str = "ok"
    metrics: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    server_pids: list[int] = field(default_factory=list)  # for the runner to clean up
    started: float = field(default_factory=time.monotonic)

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "status": self.status,
            "metrics": self.metrics,
            "errors": self.errors,
            "settings": self.settings,
            "extra": self.extra,
            "server_pids": self.server_pids,
            "seconds": round(time.monotonic() - self.started, 1),
        }

    def save(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2))
        tmp.replace(self.out)

    def unavailable(self, reason: str) -> None:
        self.status = f"unavailable: {reason}"
        self.save()

    def record(self, key: str, value: float) -> None:
        self.metrics[key] = round(value, 3)
        self.save()
        label, unit, _ = METRICS.get(key, (key, "", True))
        print(f"[{self.engine}] {label}: {value:.3f} {unit}", flush=True)


# -- processes and ports ----------------------------------------------------------------
def _load_lifetime() -> Any:
    # By path, not by import: the peers' environment has no `orchestration` package, and
    # importing it would import the whole host. The module is standard library only.
    path = Path(__file__).resolve().parents[1] / "orchestration" / "host" / "lifetime.py"
    spec = importlib.util.spec_from_file_location("_orchestration_lifetime", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dies_with_this_process() -> Callable[[], None] | None:
    """A `preexec_fn` for subprocess.Popen: the server or script started dies with this
    process, even SIGKILLed (Linux; see orchestration/host/lifetime.py)."""
    result: Callable[[], None] | None = _LIFETIME.dies_with_this_process()
    return result


_LIFETIME = _load_lifetime()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float, process: subprocess.Popen[bytes] | None) -> None:
    """Wait until 127.0.0.1:port accepts connections; fail if `process` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.25):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before listening")
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} within {timeout:.0f}s")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM (its process group when it leads one), wait, then SIGKILL; always waits."""
    if process.poll() is not None:
        return
    group = os.getpgid(process.pid) == process.pid
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        process.wait(timeout)


def wait_pid_exit(pid: int, timeout: float) -> bool:
    """Wait for a process that is not our child (e.g. a daemon) to exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _stat_fields(pid)[0] == "Z":  # exited; its parent has not reaped it yet
                return True
        except (OSError, IndexError):
            return True
        time.sleep(0.05)
    return False


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree_pids(root: int) -> list[int]:
    """`root` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                children.setdefault(int(_stat_fields(int(entry.name))[1]), []).append(
                    int(entry.name)
                )
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(children.get(pid, []))
    return pids


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds of a process and its live descendants (and waited children)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in tree_pids(root):
        with contextlib.suppress(OSError, IndexError):
            fields = _stat_fields(pid)
            total += sum(int(f) for f in fields[11:15]) / ticks
    return total


def run_main(main: Callable[[], int]) -> int:
    """Run a bench script's main; a stop by the runner's budget ends it with one line."""
    try:
        return main()
    except KeyboardInterrupt as stop:
        print(f"stopped ({stop}): the runner's time budget ran out", file=sys.stderr)
        return 130


def install_sigterm_handler() -> None:
    """Turn SIGTERM (the runner's time budget) into KeyboardInterrupt, so `finally` blocks
    stop the servers this script started."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
