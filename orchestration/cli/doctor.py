"""The `doctor` command's arguments and report (the checks are `orchestration.doctor`'s)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

MARKS = {"error": "ERROR  ", "warning": "WARNING", "note": "note   "}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check an app before running it: what will not work here, and what to do",
        description="Read the app as the host will (settings, host.json, indexing, bindings, "
        "orchestrator code) and report problems; exit code 1 when something will fail.",
    )
    doctor.add_argument("--app-dir", type=Path, default=Path("."), help="the app's folder")
    doctor.add_argument("--json", action="store_true", help="print JSON for scripts")
    doctor.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 on warnings too (e.g. orchestrator code that replays differently)",
    )
    doctor.add_argument(
        "--extension",
        action="append",
        default=[],
        metavar="MODULE:FUNCTION",
        help="a binding extension the host will run with (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    from orchestration.doctor import examine

    report = examine(Path(args.app_dir), extensions=tuple(args.extension))
    if args.json:
        document = {
            "appDir": str(report.app_dir),
            "functions": report.functions,
            "orchestrators": report.orchestrators,
            "activities": report.activities,
            "findings": [finding.to_json() for finding in report.findings],
            "errors": len(report.errors),
            "warnings": len(report.warnings),
        }
        print(json.dumps(document, indent=2))
    else:
        print(f"Checking {report.app_dir}")
        order = {"error": 0, "warning": 1, "note": 2}
        for finding in sorted(report.findings, key=lambda f: order[f.level.value]):
            print(f"{MARKS[finding.level.value]} {finding.where}: {finding.problem}")
            if finding.fix:
                print(f"          fix: {finding.fix}")
        print(
            f"{len(report.functions)} function(s), {len(report.orchestrators)} "
            f"orchestrator(s), {len(report.activities)} activities; {len(report.errors)} "
            f"error(s), {len(report.warnings)} warning(s)."
        )
    return 1 if report.errors or (args.strict and report.warnings) else 0
