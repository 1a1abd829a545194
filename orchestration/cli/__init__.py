"""The command line: `python -m orchestration host [--app-dir DIR] [--port 7071] [--workers N]`,
and the task hub commands `start`, `status`, `list`, `raise-event`, `terminate`, `suspend`,
`resume`, `rewind`, `restart`, `purge`, `entity get|signal|list` and `hub info` (see
`orchestration.cli.commands`), and `replay-check` (see `orchestration.cli.replay_check`)."""

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
        "--install-azurite",
        action="store_true",
        help="when Azurite is needed but not installed, npm install it into the app's folder",
    )
    host.add_argument(
        "--extension",
        action="append",
        default=[],
        metavar="MODULE:FUNCTION",
        help="register a binding extension (repeatable)",
    )
    from orchestration.cli import doctor, emulator

    emulator.add_parser(commands)
    doctor.add_parser(commands)
    _add_hub_commands(commands)
    return parser


def _add_hub_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The commands that work on a task hub straight through storage (no host needed)."""
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("where the task hub is")
    where.add_argument(
        "--app-dir",
        type=Path,
        default=Path("."),
        help="app dir whose host.json and local.settings.json name the hub and storage",
    )
    where.add_argument(
        "--connection", help="storage connection string (default: AzureWebJobsStorage)"
    )
    where.add_argument("--hub", help="task hub name (default: host.json's hubName)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, parents=[common], description=help)

    start = add("start", "start an orchestration instance")
    start.add_argument("name", help="orchestrator function name")
    start.add_argument("--input", help="input as JSON, or @file with JSON (@- for stdin)")
    start.add_argument("--id", help="instance id (default: generated)")
    start.add_argument("--version", help="orchestration version (default: defaultVersion)")
    start.add_argument("--wait", action="store_true", help="wait for the end, showing progress")
    start.add_argument(
        "--timeout", type=float, default=300.0, help="seconds --wait waits (default 300)"
    )

    status = add("status", "show an instance's status")
    status.add_argument("id", help="instance id")
    status.add_argument("--history", action="store_true", help="timeline of its steps")

    listing = add("list", "list instances, newest first")
    listing.add_argument(
        "--status", action="append", help="runtime status (repeatable or comma-separated)"
    )
    listing.add_argument("--since", help="created at or after: ISO time or age (30m, 2h, 7d)")
    listing.add_argument("--until", help="created at or before: ISO time or age")
    listing.add_argument("--prefix", help="instance ids starting with this")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")

    event = add("raise-event", "send an event to a running instance")
    event.add_argument("id", help="instance id")
    event.add_argument("event", help="event name")
    event.add_argument("--data", help="event data as JSON, or @file (@- for stdin)")

    for verb, text in (
        ("terminate", "terminate a running instance"),
        ("suspend", "suspend a running instance"),
        ("resume", "resume a suspended instance"),
        ("rewind", "rewind a Failed instance: retry the failures that ended it"),
    ):
        parser = add(verb, text)
        parser.add_argument("id", help="instance id")
        parser.add_argument("--reason", help="why (recorded in history)")

    restart = add("restart", "start an instance's orchestrator again with the same input")
    restart.add_argument("id", help="instance id")
    restart.add_argument(
        "--same-id", action="store_true", help="reuse the instance id (it must have finished)"
    )

    purge = add("purge", "delete finished instances: by id, or by filter")
    purge.add_argument("ids", nargs="*", metavar="ID", help="instance ids")
    purge.add_argument("--since", help="created at or after: ISO time or age (30m, 2h, 7d)")
    purge.add_argument("--until", help="created at or before: ISO time or age")
    purge.add_argument("--status", action="append", help="final statuses (default: all final)")
    purge.add_argument("--force", action="store_true", help="purge ids even if still running")

    from orchestration.cli import entities

    entities.add_parsers(add("entity", "entity commands: get, signal, list"), common)

    from orchestration.cli import replay_check

    replay_check.add_parser(add)

    hub = add("hub", "task hub commands")
    hub_commands = hub.add_subparsers(dest="hub_command", required=True)
    hub_commands.add_parser("info", help="queue depths and instances by status", parents=[common])


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
                install_azurite=args.install_azurite,
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
    if args.command == "azurite":
        from orchestration.cli.emulator import run as emulate

        return emulate(args)
    if args.command == "doctor":
        from orchestration.cli.doctor import run as examine

        code = examine(args)
        # The app was imported: a thread it started must not keep the doctor from exiting.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if args.command == "replay-check":
        from orchestration.cli.replay_check import run as check

        return check(args)
    from orchestration.cli.commands import run

    return run(args)
