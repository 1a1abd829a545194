"""The command line: `python -m orchestration host [--app-dir DIR] [--port 7071] [--workers N]`."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m orchestration")
    commands = parser.add_subparsers(dest="command", required=True)
    host = commands.add_parser("host", help="run a Functions v2 Python app locally")
    host.add_argument("--app-dir", type=Path, default=Path("."), help="dir with function_app.py")
    host.add_argument("--port", type=int, default=7071, help="HTTP port (default 7071)")
    host.add_argument("--bind", default="127.0.0.1", help="HTTP address (default 127.0.0.1)")
    host.add_argument(
        "--workers",
        type=int,
        default=0,
        help="worker processes (default: FUNCTIONS_WORKER_PROCESS_COUNT, else 1)",
    )
    host.add_argument(
        "--grace", type=float, default=30.0, help="seconds in-flight work gets on shutdown"
    )
    host.add_argument(
        "--no-azurite", action="store_true", help="never start Azurite, even if none runs"
    )
    host.add_argument(
        "--extension",
        action="append",
        default=[],
        metavar="MODULE:FUNCTION",
        help="register a binding extension (repeatable)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "host":
        from orchestration.host import HostConfig, run_host
        from orchestration.host.logs import configure_logging

        configure_logging()
        code = run_host(
            HostConfig(
                app_dir=args.app_dir,
                port=args.port,
                bind=args.bind,
                workers=args.workers,
                grace=args.grace,
                start_azurite=not args.no_azurite,
                extensions=tuple(args.extension),
            )
        )
        if threading.active_count() > 1:
            # A sync function still running in a pool thread would keep the interpreter
            # alive past the grace period; the host has already released its work.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code
    return 2
