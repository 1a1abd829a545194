"""Replay benchmark for two existing in-process Durable replay engines (the "peers").

Run with the bench-only venv (see setup.sh), never the app's .venv::

    bench/peers/setup.sh
    bench/peers/.venv/bin/python bench/peers/replay_peers.py --n 1000 --repeat 5 --json

For each engine and workload the script builds the history a real run would have
recorded at its final step, replays it once as a warm-up, then times ``repeat``
replays with ``time.perf_counter``. Every replay's output is checked: the engine
must report the orchestration as completed with the expected result, otherwise
the script fails (so a figure always stands for a replay that really ran).

Workloads (activity ``inc(x) = x + 1``, never executed: only replayed):

* ``chain``: ``x = 0; for _ in range(n): x = yield call_activity("inc", x)``; result ``n``.
* ``fanout``: ``yield task_all([call_activity("inc", i) for i in range(n)])``;
  result ``sum(i + 1) = n * (n + 1) / 2``.

A human table goes to stderr; with ``--json`` a JSON list goes to stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version as dist_version
from typing import Any

WORKLOADS: tuple[str, ...] = ("chain", "fanout")
INSTANCE_ID = "bench-instance"
ACTIVITY = "inc"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def expected_result(workload: str, n: int) -> int:
    if workload == "chain":
        return n
    return n * (n + 1) // 2


def episode_time(k: int) -> datetime:
    """Timestamp of the k-th episode (each episode one second after the previous)."""
    return T0 + timedelta(seconds=k)


@dataclass(frozen=True)
class Case:
    """One prepared (engine, workload) pair.

    ``replay`` performs one full replay and returns the engine's raw output;
    ``check`` raises AssertionError unless that output says "completed with the
    expected result"; ``decode`` (optional) performs only the wire-decoding part
    of the engine's real entry path, reported separately.
    """

    engine: str
    version: str
    workload: str
    n: int
    timed: str
    replay: Callable[[], object]
    check: Callable[[object], None]
    decode: Callable[[], object] | None
    history_events: int


# ---------------------------------------------------------------- durabletask-python


def durabletask_cases(n: int) -> list[Case]:
    from durabletask import task, worker
    from durabletask.internal import helpers as ph
    from durabletask.internal import orchestrator_service_pb2 as pb
    from durabletask.serialization import JsonDataConverter

    def chain(ctx: task.OrchestrationContext, count: int) -> Generator[task.Task[Any], Any, int]:
        x = 0
        for _ in range(count):
            x = yield ctx.call_activity(ACTIVITY, input=x)
        return x

    def fanout(ctx: task.OrchestrationContext, count: int) -> Generator[task.Task[Any], Any, int]:
        tasks = [ctx.call_activity(ACTIVITY, input=i) for i in range(count)]
        results = yield task.when_all(tasks)
        return sum(results)

    registry = worker._Registry()
    registry.add_orchestrator(chain)
    registry.add_orchestrator(fanout)
    converter = JsonDataConverter()
    # The executor checks ``logger.level <= DEBUG`` (not isEnabledFor) to build debug
    # summaries; a fresh logger has level NOTSET (0), so set the level explicitly.
    logger = logging.getLogger("bench.peers.durabletask")
    logger.setLevel(logging.WARNING)

    def started(k: int) -> pb.HistoryEvent:
        return ph.new_orchestrator_started_event(episode_time(k))

    def completed() -> pb.HistoryEvent:
        return ph.new_orchestrator_completed_event()

    # Task ids are this SDK's sequence numbers: they start at 1.
    def build(workload: str) -> tuple[list[pb.HistoryEvent], list[pb.HistoryEvent]]:
        start = ph.new_execution_started_event(workload, INSTANCE_ID, encoded_input=json.dumps(n))
        old: list[pb.HistoryEvent] = [started(0), start]
        if workload == "chain":
            # Episode 0 schedules step 1; episode k delivers completion k and schedules k+1;
            # the final episode (new_events) delivers completion n.
            old += [ph.new_task_scheduled_event(1, ACTIVITY, json.dumps(0)), completed()]
            for k in range(1, n):
                old += [
                    started(k),
                    ph.new_task_completed_event(k, json.dumps(k)),
                    ph.new_task_scheduled_event(k + 1, ACTIVITY, json.dumps(k)),
                    completed(),
                ]
            new = [started(n), ph.new_task_completed_event(n, json.dumps(n))]
        else:
            old += [ph.new_task_scheduled_event(i + 1, ACTIVITY, json.dumps(i)) for i in range(n)]
            old.append(completed())
            new = [started(1)]
            new += [ph.new_task_completed_event(i + 1, json.dumps(i + 1)) for i in range(n)]
        return old, new

    def make_check(workload: str) -> Callable[[object], None]:
        want = json.dumps(expected_result(workload, n))

        def check(out: object) -> None:
            assert isinstance(out, worker.ExecutionResults), type(out)
            done = [a for a in out.actions if a.HasField("completeOrchestration")]
            assert len(out.actions) == 1 and len(done) == 1, (
                f"expected exactly one completeOrchestration action, got {len(out.actions)} "
                f"action(s): {[a.WhichOneof('orchestratorActionType') for a in out.actions][:5]}"
            )
            complete = done[0].completeOrchestration
            status = pb.OrchestrationStatus.Name(complete.orchestrationStatus)
            assert complete.orchestrationStatus == pb.ORCHESTRATION_STATUS_COMPLETED, (
                f"status {status}: {complete.failureDetails.errorMessage}"
            )
            assert complete.result.value == want, (complete.result.value, want)

        return check

    cases: list[Case] = []
    for workload in WORKLOADS:
        old, new = build(workload)
        wire = pb.OrchestratorRequest(
            instanceId=INSTANCE_ID, pastEvents=old, newEvents=new
        ).SerializeToString()

        def replay(old: list[pb.HistoryEvent] = old, new: list[pb.HistoryEvent] = new) -> object:
            # A fresh executor per work item, as the worker does.
            executor = worker._OrchestrationExecutor(registry, logger, converter)
            return executor.execute(INSTANCE_ID, old, new)

        def decode(wire: bytes = wire) -> object:
            return pb.OrchestratorRequest.FromString(wire)

        cases.append(
            Case(
                engine="durabletask-python",
                version=dist_version("durabletask"),
                workload=workload,
                n=n,
                timed="_OrchestrationExecutor(...).execute(old_events, new_events) on pb events",
                replay=replay,
                check=make_check(workload),
                decode=decode,
                history_events=len(old) + len(new),
            )
        )
    return cases


# ---------------------------------------------------------------- azure-functions-durable


def azure_cases(n: int) -> list[Case]:
    from azure.durable_functions import DurableOrchestrationContext, Orchestrator
    from azure.durable_functions.models.history import HistoryEventType as Ev

    def chain(ctx: DurableOrchestrationContext) -> Generator[Any, Any, int]:
        count: int = ctx.get_input()
        x = 0
        for _ in range(count):
            x = yield ctx.call_activity(ACTIVITY, x)
        return x

    def fanout(ctx: DurableOrchestrationContext) -> Generator[Any, Any, int]:
        count: int = ctx.get_input()
        tasks = [ctx.call_activity(ACTIVITY, i) for i in range(count)]
        results = yield ctx.task_all(tasks)
        return sum(results)

    functions: dict[str, Callable[[DurableOrchestrationContext], Generator[Any, Any, int]]] = {
        "chain": chain,
        "fanout": fanout,
    }

    def ts(k: int) -> str:
        return episode_time(k).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def ev(kind: Ev, k: int, played: bool, event_id: int = -1, **extra: Any) -> dict[str, Any]:
        return {
            "EventType": int(kind),
            "EventId": event_id,
            "IsPlayed": played,
            "Timestamp": ts(k),
            **extra,
        }

    # Task ids are this SDK's sequence numbers: they start at 0. Events of past
    # episodes carry IsPlayed=true, those of the current (last) episode false,
    # which is what the Functions host sends.
    def build(workload: str) -> list[dict[str, Any]]:
        hist: list[dict[str, Any]] = [
            ev(Ev.ORCHESTRATOR_STARTED, 0, True),
            ev(
                Ev.EXECUTION_STARTED,
                0,
                True,
                Name=workload,
                Version="",
                Input=json.dumps(n),
                OrchestrationInstance={"InstanceId": INSTANCE_ID, "ExecutionId": "e1"},
            ),
        ]
        if workload == "chain":
            hist += [
                ev(Ev.TASK_SCHEDULED, 0, True, 0, Name=ACTIVITY, Input=json.dumps(0)),
                ev(Ev.ORCHESTRATOR_COMPLETED, 0, True),
            ]
            for k in range(1, n):
                hist += [
                    ev(Ev.ORCHESTRATOR_STARTED, k, True),
                    ev(Ev.TASK_COMPLETED, k, True, TaskScheduledId=k - 1, Result=json.dumps(k)),
                    ev(Ev.TASK_SCHEDULED, k, True, k, Name=ACTIVITY, Input=json.dumps(k)),
                    ev(Ev.ORCHESTRATOR_COMPLETED, k, True),
                ]
            hist += [
                ev(Ev.ORCHESTRATOR_STARTED, n, False),
                ev(Ev.TASK_COMPLETED, n, False, TaskScheduledId=n - 1, Result=json.dumps(n)),
            ]
        else:
            hist += [
                ev(Ev.TASK_SCHEDULED, 0, True, i, Name=ACTIVITY, Input=json.dumps(i))
                for i in range(n)
            ]
            hist += [ev(Ev.ORCHESTRATOR_COMPLETED, 0, True), ev(Ev.ORCHESTRATOR_STARTED, 1, False)]
            hist += [
                ev(Ev.TASK_COMPLETED, 1, False, TaskScheduledId=i, Result=json.dumps(i + 1))
                for i in range(n)
            ]
        return hist

    def make_check(workload: str) -> Callable[[object], None]:
        want = expected_result(workload, n)

        def check(out: object) -> None:
            # handle() returns the JSON OrchestratorState for the host; it raises on
            # orchestrator errors. isDone=true + output is the completion signal.
            assert isinstance(out, str), type(out)
            state = json.loads(out)
            assert state.get("isDone") is True, {k: v for k, v in state.items() if k != "actions"}
            assert state.get("error") is None, state.get("error")
            assert state.get("output") == want, (state.get("output"), want)

        return check

    cases: list[Case] = []
    for workload in WORKLOADS:
        history = build(workload)
        body = json.dumps(
            {
                "history": history,
                "instanceId": INSTANCE_ID,
                "isReplaying": True,
                "parentInstanceId": None,
                "input": json.dumps(n),
                "upperSchemaVersion": 0,
            }
        )
        fn = functions[workload]

        # A context is single-use (replay mutates it), so each replay parses the
        # body afresh: exactly what Orchestrator.create(fn)'s handle does per call.
        def replay(body: str = body, fn: Any = fn) -> object:
            ctx = DurableOrchestrationContext.from_json(body)
            return Orchestrator(fn).handle(ctx)

        def decode(body: str = body) -> object:
            return DurableOrchestrationContext.from_json(body)

        cases.append(
            Case(
                engine="azure-functions-durable",
                version=dist_version("azure-functions-durable"),
                workload=workload,
                n=n,
                timed="DurableOrchestrationContext.from_json(body) + Orchestrator(fn).handle(ctx)",
                replay=replay,
                check=make_check(workload),
                decode=decode,
                history_events=len(history),
            )
        )
    return cases


# ---------------------------------------------------------------- driver

ENGINES: dict[str, Callable[[int], list[Case]]] = {
    "durabletask-python": durabletask_cases,
    "azure-functions-durable": azure_cases,
}


def time_calls(fn: Callable[[], object], repeat: int) -> list[float]:
    """Seconds per call for ``repeat`` calls (caller has already warmed up)."""
    samples: list[float] = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return samples


def run_case(case: Case, repeat: int) -> dict[str, Any]:
    case.check(case.replay())  # warm-up, and proof that the replay completes
    samples: list[float] = []
    for _ in range(repeat):
        gc.collect()  # start each sample from a clean heap; GC stays enabled while timed
        t = time.perf_counter()
        out = case.replay()
        samples.append(time.perf_counter() - t)
        case.check(out)  # outside the timed region
    median_ms = statistics.median(samples) * 1e3
    row: dict[str, Any] = {
        "engine": case.engine,
        "version": case.version,
        "workload": case.workload,
        "n": case.n,
        "ms_per_replay_median": round(median_ms, 3),
        "ms_per_replay_min": round(min(samples) * 1e3, 3),
        "us_per_activity": round(median_ms * 1e3 / case.n, 3),
        "repeat": repeat,
        "history_events": case.history_events,
        "timed": case.timed,
    }
    if case.decode is not None:
        case.decode()
        row["ms_decode_median"] = round(statistics.median(time_calls(case.decode, repeat)) * 1e3, 3)
    return row


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    header = (
        f"{'engine':<24} {'version':<8} {'workload':<8} {'n':>6} {'events':>7} "
        f"{'median ms':>10} {'min ms':>9} {'us/act':>8} {'decode ms':>10}"
    )
    print(header, file=sys.stderr)
    print("-" * len(header), file=sys.stderr)
    for r in rows:
        decode = r.get("ms_decode_median")
        print(
            f"{r['engine']:<24} {r['version']:<8} {r['workload']:<8} {r['n']:>6} "
            f"{r['history_events']:>7} {r['ms_per_replay_median']:>10.2f} "
            f"{r['ms_per_replay_min']:>9.2f} {r['us_per_activity']:>8.1f} "
            f"{'-' if decode is None else f'{decode:.2f}':>10}",
            file=sys.stderr,
        )
    print(file=sys.stderr)
    for engine in dict.fromkeys(r["engine"] for r in rows):
        timed = next(r["timed"] for r in rows if r["engine"] == engine)
        print(f"{engine}: timed = {timed}", file=sys.stderr)
    print(
        "decode ms = wire decoding alone (durabletask: OrchestratorRequest.FromString; "
        "azure: from_json), already included in azure's median, not in durabletask's.",
        file=sys.stderr,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=1000, help="activities per orchestration")
    p.add_argument("--repeat", type=int, default=5, help="timed replays per case")
    p.add_argument("--json", action="store_true", help="print the JSON list to stdout")
    p.add_argument(
        "--engine",
        action="append",
        choices=sorted(ENGINES),
        help="restrict to this engine (repeatable; default: all)",
    )
    p.add_argument(
        "--workload",
        action="append",
        choices=WORKLOADS,
        help="restrict to this workload (repeatable; default: all)",
    )
    args = p.parse_args(argv)
    if args.n < 1 or args.repeat < 1:
        p.error("--n and --repeat must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rows: list[dict[str, Any]] = []
    for engine in args.engine or list(ENGINES):
        for case in ENGINES[engine](args.n):
            if args.workload and case.workload not in args.workload:
                continue
            rows.append(run_case(case, args.repeat))
    print_table(rows)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
