"""`python -m orchestration replay-check`: would the code now in the app dir break in-flight
instances? A deploy gate for CI.

It loads the app as the host does (its local.settings.json, then its function_app.py), reads
the history of every in-flight instance of the task hub (Running, Pending or Suspended, or
those a filter selects) and replays each against the app's orchestrators with the engine's
own replay (`Replayer.check`). It lists each instance that would fail, with the step and both
actions (history's and the code's). Instances the app's host.json versioning would leave to
another worker (versionFailureStrategy Reject) are listed as skipped; those it would fail
(Fail) count as failing. Exit code: 0 when every instance replays, 1 when any would fail, 2
for a usage, app or storage error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from orchestration.azure.errors import ResourceNotFound, StorageError
from orchestration.cli import render
from orchestration.cli.commands import emit, parse_time
from orchestration.cli.config import CliError, resolve_target
from orchestration.core.replayer import Replayer
from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.core.versioning import VersionFailureStrategy, VersioningPolicy
from orchestration.functions.app import registry_of
from orchestration.functions.management.validation import (
    BadRequest,
    InstanceQuery,
    parse_statuses,
)
from orchestration.functions.registry import Registry
from orchestration.host.app_loader import AppLoadError, find_app, import_app_module
from orchestration.storage.hub import InstanceState, TaskHub
from orchestration.storage.names import InvalidNameError

IN_FLIGHT = (
    OrchestrationRuntimeStatus.Running,
    OrchestrationRuntimeStatus.Pending,
    OrchestrationRuntimeStatus.Suspended,
)
USAGE_ERROR = 2
_READS_AT_ONCE = 8


def add_parser(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    check = add("replay-check", "replay in-flight instances against the app's current code")
    check.add_argument("--name", action="append", help="orchestrator name (repeatable)")
    check.add_argument("--instance-id-prefix", help="instance ids starting with this")
    check.add_argument(
        "--status",
        action="append",
        help="runtime status (repeatable or comma-separated; default Running,Pending,Suspended)",
    )
    check.add_argument("--created-from", help="created at or after: ISO time or age (30m, 7d)")
    check.add_argument("--created-to", help="created at or before: ISO time or age")
    check.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


@dataclass(frozen=True)
class Finding:
    """What replaying one instance said."""

    instance_id: str
    name: str
    status: str
    version: str | None
    outcome: str  # "replays", "fails" or "skipped"
    detail: str = ""


def load_orchestrators(app_dir: Path) -> dict[str, Any]:
    """The app's orchestrators by name, from its function_app.py (imported as the host does)."""
    module = import_app_module(app_dir.resolve())
    app = find_app(module)
    # The app's engine registry, then blueprints at module level not (yet) registered on it.
    registries = [registry_of(app)]
    registries += [getattr(value, "_registry", None) for value in vars(module).values()]
    merged = Registry()
    for registry in registries:
        if isinstance(registry, Registry):
            for name, function in registry.orchestrators.items():
                merged.orchestrators.setdefault(name, function)
    return merged.orchestrators


def check_instance(
    replayer: Replayer,
    orchestrators: Mapping[str, Any],
    policy: VersioningPolicy,
    state: InstanceState,
    history: list[Any],
) -> Finding:
    """The finding for one instance and its history."""

    def finding(outcome: str, detail: str = "") -> Finding:
        return Finding(
            state.instance_id, state.name, state.status.value, state.version, outcome, detail
        )

    if not policy.can_run(state.version):
        if policy.failure is VersionFailureStrategy.FAIL:
            return finding("fails", f"{policy.mismatch(state.version)} versionFailureStrategy "
                                    f"is Fail: this app's workers would fail it.")  # fmt: skip
        return finding("skipped", f"{policy.mismatch(state.version)} This app's workers would "
                                  f"leave it for a worker that can run it.")  # fmt: skip
    if state.name not in orchestrators:
        return finding("fails", f"No orchestrator named {state.name!r} is registered in this app.")
    report = replayer.check(state.instance_id, history)
    if report.error is not None:
        return finding("fails", report.error)
    return finding("replays")


class _Progress:
    """A line on stderr now and then, for long runs."""

    def __init__(self, err: TextIO, quiet: bool) -> None:
        self._err = err
        self._quiet = quiet
        self._last = time.monotonic()

    def tick(self, checked: int, failing: int, force: bool = False) -> None:
        now = time.monotonic()
        if self._quiet or (not force and now - self._last < 2.0):
            return
        self._last = now
        self._err.write(f"  ... {checked} instance(s) checked, {failing} would fail\n")
        self._err.flush()


async def _check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    target = resolve_target(args.app_dir, args.connection, args.hub)
    try:
        orchestrators = load_orchestrators(args.app_dir)
    except AppLoadError as failure:
        raise CliError(f"cannot load the app in {args.app_dir}: {failure}") from None
    try:
        statuses = parse_statuses(args.status or [], "--status") or list(IN_FLIGHT)
    except BadRequest as failure:
        raise CliError(failure.detail) from None
    query = InstanceQuery(
        created_from=parse_time(args.created_from, "--created-from"),
        created_to=parse_time(args.created_to, "--created-to"),
        statuses=tuple(statuses),
        prefix=args.instance_id_prefix or None,
    )
    names = {n for value in args.name or [] for n in value.split(",") if n}
    policy = target.settings.versioning
    replayer = Replayer(orchestrators)
    hub = TaskHub.from_connection_string(target.connection_string, target.hub_name)
    findings: list[Finding] = []
    progress = _Progress(err, args.quiet or args.json)
    try:
        batch: list[InstanceState] = []

        async def drain() -> None:
            histories = await asyncio.gather(*(hub.read_history(s) for s in batch))
            for state, history in zip(batch, histories, strict=True):
                findings.append(check_instance(replayer, orchestrators, policy, state, history))
            batch.clear()
            progress.tick(len(findings), sum(f.outcome == "fails" for f in findings))

        async for state in hub.iterate_states(query.filter()):
            if names and state.name not in names:
                continue
            batch.append(state)
            if len(batch) >= _READS_AT_ONCE:
                await drain()
        await drain()
    except ResourceNotFound:
        raise CliError(f"task hub {target.hub_name!r} does not exist in this storage") from None
    finally:
        await hub.close()
    failing = [f for f in findings if f.outcome == "fails"]
    skipped = [f for f in findings if f.outcome == "skipped"]
    document = {
        "appDir": str(args.app_dir),
        "hub": target.hub_name,
        "checked": len(findings),
        "failing": len(failing),
        "skipped": len(skipped),
        "instances": [asdict(f) for f in findings],
    }
    emit(out, args, document, _text(args.app_dir, findings, failing, skipped))
    return 1 if failing else 0


def _text(
    app_dir: Path, findings: list[Finding], failing: list[Finding], skipped: list[Finding]
) -> str:
    lines: list[str] = []
    for found in failing + skipped:
        label = "FAIL" if found.outcome == "fails" else "SKIP"
        version = f"version {found.version}" if found.version else "no version"
        lines.append(f"{label}  {found.instance_id}  {found.name}  ({found.status}, {version})")
        lines.append(f"      {' '.join(found.detail.split())}")
    if lines:
        lines.append("")
    rows = [["would fail", len(failing)], ["skipped", len(skipped)]]
    rows.append(["replay", len(findings) - len(failing) - len(skipped)])
    lines.append(render.table(["INSTANCES", "COUNT"], rows))
    verdict = "some would fail" if failing else "all replay"
    lines.append(f"{len(findings)} instance(s) checked against {app_dir}: {verdict}")
    return "\n".join(lines)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the check; errors become one line on stderr and exit code 2."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        return asyncio.run(_check(args, out, err))
    except (CliError, InvalidNameError) as failure:
        message = str(failure)
    except StorageError as failure:
        message = f"cannot read the task hub ({failure.operation}): {failure.status} {failure}"
    except OSError as failure:
        message = f"cannot reach storage: {failure}"
    except KeyboardInterrupt:
        err.write("error: interrupted\n")
        return 130
    err.write(f"error: {' '.join(message.split())}\n")
    return USAGE_ERROR
