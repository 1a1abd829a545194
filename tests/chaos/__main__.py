"""`python -m tests.chaos`: the full torture run (`make chaos`); exit code 1 when it fails."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tests.chaos.torture import Config, print_figures, run
from tests.processes import stop_on_signals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="worker processes per host")
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kill-min", type=float, default=3.0, help="seconds between kills")
    parser.add_argument("--kill-max", type=float, default=6.0)
    parser.add_argument("--azurite-down", type=float, default=2.0, help="seconds Azurite is down")
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds for the run")
    parser.add_argument("--json", type=Path, default=Path("chaos-report.json"))
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument(
        "--events-after-start",
        action="store_true",
        help="raise external events only once their instance has started",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, data)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = Config(
        hosts=args.hosts,
        workers=args.workers,
        instances=args.instances,
        seed=args.seed,
        kill_interval=(args.kill_min, args.kill_max),
        azurite_down_for=args.azurite_down,
        deadline=args.deadline,
        json_path=args.json,
        work_dir=args.work_dir,
        keep_work_dir=args.keep,
        events_after_start=args.events_after_start,
    )
    # SIGTERM and SIGHUP end the run as Ctrl-C does: the `finally` blocks stop the hosts and
    # Azurite (and tests/processes.py what they missed, at exit).
    with stop_on_signals():
        try:
            figures = run(config)
        except KeyboardInterrupt as stop:
            print(f"torture run {stop}", file=sys.stderr, flush=True)
            return 130
    print_figures(figures)
    print(f"figures written to {args.json}", flush=True)
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
