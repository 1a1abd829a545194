"""`python -m orchestration doctor`: read an app the way the host will, before anything runs,
and report what will not work here and what to do instead.

It loads local.settings.json into the environment (as the host does), reads host.json,
imports and indexes function_app.py, checks every function's bindings against the host's
registry, looks for leftover `azure.durable_functions` imports, checks the storage setting
(and whether Azurite is there for a local one), requirements.txt for Azure's build, and each
orchestrator's code for calls that replay differently. Errors mean the host will refuse the
app or a feature will fail; the exit code is then 1. It imports the app's code, as the host
does; it starts nothing and touches no storage.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestration.doctor import app_checks, settings_checks
from orchestration.doctor.findings import Finding, Level

__all__ = ["Finding", "Level", "Report", "examine"]


@dataclass
class Report:
    app_dir: Path
    findings: list[Finding] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    orchestrators: list[str] = field(default_factory=list)
    activities: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level is Level.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level is Level.WARNING]


def examine(
    app_dir: Path,
    environ: MutableMapping[str, str] | None = None,
    extensions: tuple[str, ...] = (),
) -> Report:
    """Every finding for the app in `app_dir` (`environ`: os.environ by default)."""
    app_dir = app_dir.resolve()
    env = os.environ if environ is None else environ
    report = Report(app_dir)
    if not (app_dir / "function_app.py").exists():
        report.findings.append(
            Finding(
                Level.ERROR,
                str(app_dir),
                "no function_app.py: this is not a Python v2 Functions app folder",
                "run the doctor in the folder holding function_app.py (--app-dir)",
            )
        )
        return report

    def guarded(what: str, check: Callable[[], list[Finding]]) -> None:
        # A check that breaks is itself a finding: the doctor must never pass what it could
        # not read.
        try:
            report.findings.extend(check())
        except Exception as failure:
            report.findings.append(
                Finding(
                    Level.ERROR,
                    what,
                    f"could not be checked: {type(failure).__name__}: {failure}",
                    "fix it so the host can read it",
                )
            )

    guarded("local.settings.json", lambda: settings_checks.local_settings(app_dir, env))
    read: dict[str, Any] = {}

    def host_json() -> list[Finding]:
        found, read["settings"], read["host"] = settings_checks.host_json(app_dir)
        return found

    guarded("host.json", host_json)
    settings, host = read.get("settings"), read.get("host")
    if settings is not None:
        guarded("settings", lambda: settings_checks.storage(app_dir, settings, env))
    guarded("requirements.txt", lambda: settings_checks.requirements(app_dir))
    if host is not None:
        if str(app_dir) not in sys.path:
            sys.path.insert(0, str(app_dir))
        loaded, functions, app = app_checks.load(app_dir, host, dict(env), extensions)
        report.findings += loaded
        report.functions = [f.name for f in functions]
        registry = app_checks.registry_of(app) if app is not None else None
        if registry is not None:
            report.orchestrators = sorted(registry.orchestrators)
            report.activities = sorted(registry.activities)
        guarded("orchestrators", lambda: app_checks.orchestrators(app, app_dir))
    guarded(
        "function_app.py",
        lambda: app_checks.durable_imports(app_dir, app_checks.app_files(app_dir)),
    )
    return report
