"""`python -m tests.soak`: the soak run (`make soak`); exit code 1 when it fails."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tests.soak.judge import MemoryBound
from tests.soak.report import summary, table
from tests.soak.run import DEFAULT_RATE, Config, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__)
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="worker processes per host")
    parser.add_argument("--minutes", type=float, default=20.0, help="minutes of load")
    parser.add_argument(
        "--warmup", type=float, default=None, help="minutes of warm-up (default: half the load)"
    )
    parser.add_argument("--period", type=float, default=10.0, help="seconds between samples")
    parser.add_argument(
        "--rate", type=float, default=DEFAULT_RATE, help="workflows started per second"
    )
    parser.add_argument("--max-in-flight", type=int, default=200)
    parser.add_argument(
        "--drain", type=float, default=120.0, help="seconds in-flight workflows get after the load"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--memory-floor", type=float, default=16.0, help="MiB a host may grow")
    parser.add_argument(
        "--memory-fraction", type=float, default=0.05, help="... or this part of its warm RSS"
    )
    parser.add_argument("--table-seconds", type=float, default=60.0, help="seconds per row")
    parser.add_argument("--json", type=Path, default=Path("soak-report.json"))
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, data)")
    parser.add_argument(
        "--host-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment setting for the hosts (repeatable)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = Config(
        hosts=args.hosts,
        workers=args.workers,
        minutes=args.minutes,
        warmup_minutes=args.warmup,
        period=args.period,
        rate=args.rate,
        max_in_flight=args.max_in_flight,
        drain_seconds=args.drain,
        seed=args.seed,
        memory_bound=MemoryBound(args.memory_floor, args.memory_fraction),
        table_seconds=args.table_seconds,
        host_env=dict(setting.split("=", 1) for setting in args.host_env),
        work_dir=args.work_dir,
        keep_work_dir=args.keep,
        json_path=args.json,
    )
    report = run(config)
    print(table(report, config.table_seconds), flush=True)
    print(summary(report), flush=True)
    print(f"figures written to {args.json}", flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
