"""The doctor's reading of the app itself, as the host reads it: the import, the index, each
function's bindings against what the local host supports, leftover Durable Functions
imports, and the orchestrators' code."""

from __future__ import annotations

import ast
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from orchestration.doctor.determinism import check_orchestrator
from orchestration.doctor.findings import Finding, Level
from orchestration.functions.app import registry_of as registry_of
from orchestration.host.app_loader import (
    AppLoadError,
    FunctionSpec,
    find_app,
    import_app_module,
    index_app,
)
from orchestration.host.bindings import (
    BindingConfigError,
    BindingRegistry,
    HostContext,
    UnsupportedBindingError,
)
from orchestration.host.extensions import ExtensionError, build_registry
from orchestration.host.invoker import Invoker
from orchestration.host.routes import Router
from orchestration.host.settings import HostJson
from orchestration.host.storage import StorageAccounts

SKIPPED_DIRS = {
    ".venv", "venv", "node_modules", ".git", "__pycache__", ".azurite", ".python_packages",
}  # fmt: skip
DF_MODULE = "azure.durable_functions"


def app_files(app_dir: Path) -> list[Path]:
    """The app's own Python files that importing function_app.py loaded (what Azure will run),
    function_app.py first."""
    root = app_dir.resolve()
    files = [root / "function_app.py"]
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py"):
            continue
        resolved = Path(path).resolve()
        try:
            parts = resolved.relative_to(root).parts
        except ValueError:
            continue
        if not SKIPPED_DIRS.intersection(parts) and resolved not in files:
            files.append(resolved)
    return files


def durable_imports(app_dir: Path, files: list[Path]) -> list[Finding]:
    """`import azure.durable_functions` left in the app's files (the one line to change)."""
    found: list[Finding] = []
    app_dir = app_dir.resolve()
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except SyntaxError as failure:
            where = f"{path.relative_to(app_dir)}:{failure.lineno or 0}"
            found.append(Finding(Level.ERROR, where, f"syntax error: {failure.msg}"))
            continue
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            if any(n == DF_MODULE or n.startswith(f"{DF_MODULE}.") for n in names):
                found.append(
                    Finding(
                        Level.ERROR,
                        f"{path.relative_to(app_dir)}:{node.lineno}",
                        "imports azure.durable_functions, which needs the .NET Durable "
                        "extension this host does not have",
                        "import orchestration as df (the same names; testing helpers from "
                        "orchestration.testing)",
                    )
                )
    return found


def _context(
    app_dir: Path,
    host_json: HostJson,
    settings: Mapping[str, str],
    registry: BindingRegistry,
    executor: ThreadPoolExecutor,
) -> HostContext:
    return HostContext(
        app_dir=app_dir,
        host_id="doctor",
        host_json=host_json,
        settings=settings,
        storage=StorageAccounts(),
        invoker=Invoker(registry, executor),
        router=Router(host_json.route_prefix),
    )


def load(
    app_dir: Path, host_json: HostJson, settings: Mapping[str, str], extensions: tuple[str, ...]
) -> tuple[list[Finding], list[FunctionSpec], Any]:
    """Import and index the app, then check each function's bindings as the host would."""
    try:
        app = find_app(import_app_module(app_dir))
        functions = index_app(app)
    except AppLoadError as failure:
        fix = ""
        if DF_MODULE in str(failure) or "durable_functions" in str(failure):
            fix = "import orchestration as df instead of azure.durable_functions"
        return [Finding(Level.ERROR, "function_app.py", str(failure), fix)], [], None
    except BaseException as failure:  # SystemExit, KeyboardInterrupt... at import time
        problem = f"importing it raised {type(failure).__name__}: {failure}"
        fix = "an app must not exit or stop while it is imported"
        return [Finding(Level.ERROR, "function_app.py", problem, fix)], [], None
    try:
        registry = build_registry(extensions, settings)
    except ExtensionError as failure:
        return [Finding(Level.ERROR, "extensions", str(failure))], functions, app
    found: list[Finding] = []
    with ThreadPoolExecutor(max_workers=1) as executor:
        context = _context(app_dir, host_json, settings, registry, executor)
        for function in functions:
            try:
                registry.validate(function, context)
            except UnsupportedBindingError as failure:
                found.append(
                    Finding(
                        Level.ERROR,
                        f"function {function.name!r}",
                        _without_name(str(failure), function.name),
                        "the local host and this engine support http, queue, timer, blob and "
                        "table bindings and the durable ones; see README, The local host",
                    )
                )
            except BindingConfigError as failure:
                problem = _without_name(str(failure), function.name)
                found.append(Finding(Level.ERROR, f"function {function.name!r}", problem))
    return found, functions, app


def _without_name(message: str, name: str) -> str:
    return message.removeprefix(f"function '{name}': ").removeprefix(f"function {name!r}: ")


def orchestrators(app: Any, app_dir: Path) -> list[Finding]:
    registry = registry_of(app) if app is not None else None
    if registry is None:
        return []
    found: list[Finding] = []
    for name, function in sorted(registry.orchestrators.items()):
        found += check_orchestrator(name, function, app_dir)
    return found
