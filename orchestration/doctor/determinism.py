"""Orchestrator code that replays differently each time: calls to the clock, randomness, ids,
sleeps and I/O, found in the source of each registered orchestrator, with the replay-safe
call to use instead (Durable Functions' code constraints).

It reads the orchestrator's own body (nested functions and lambdas included), not what the
functions it calls do; names are matched as written (`datetime.now`, `dt.datetime.now` after
`import datetime as dt`, `now` after `from datetime import datetime`... are resolved through
the module's imports).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from orchestration.doctor.findings import Finding, Level

_CLOCK = "use context.current_utc_datetime (the same on every replay)"
_ID = "use context.new_uuid() (the same on every replay)"
_RANDOM = "draw it in an activity, or derive it from context.new_uuid()"
_SLEEP = "use yield context.create_timer(context.current_utc_datetime + timedelta(...))"
_IO = "do I/O in an activity (yield context.call_activity(...)); call_http for HTTP"
_ENV = "read settings in an activity or pass them as input: they may change between replays"

# Fully qualified callables -> the replay-safe alternative.
UNSAFE: dict[str, str] = {
    "datetime.datetime.now": _CLOCK,
    "datetime.datetime.utcnow": _CLOCK,
    "datetime.datetime.today": _CLOCK,
    "datetime.date.today": _CLOCK,
    "time.time": _CLOCK,
    "time.time_ns": _CLOCK,
    "time.monotonic": _CLOCK,
    "time.perf_counter": _CLOCK,
    "time.localtime": _CLOCK,
    "time.gmtime": _CLOCK,
    "uuid.uuid1": _ID,
    "uuid.uuid4": _ID,
    "os.urandom": _RANDOM,
    "time.sleep": _SLEEP,
    "asyncio.sleep": _SLEEP,
    "open": _IO,
    "builtins.open": _IO,
    "input": _IO,
    "os.getenv": _ENV,
    "os.environ.get": _ENV,
    "urllib.request.urlopen": _IO,
    "socket.socket": _IO,
    "socket.create_connection": _IO,
    "subprocess.run": _IO,
    "subprocess.Popen": _IO,
    "subprocess.check_output": _IO,
    "threading.Thread": "start threads in an activity; an orchestrator runs one step at a time",
}
# Every callable of these modules.
UNSAFE_MODULES: dict[str, str] = {
    "random": _RANDOM,
    "secrets": _RANDOM,
    "requests": _IO,
    "httpx": _IO,
    "aiohttp": _IO,
    "urllib3": _IO,
}


def _imports(tree: ast.Module) -> dict[str, str]:
    """Local name -> what it names, from a module's imports."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _qualified(name: str, imports: dict[str, str]) -> str:
    head, _, rest = name.partition(".")
    base = imports.get(head, head)
    return f"{base}.{rest}" if rest else base


def unsafe_call(name: str, imports: dict[str, str]) -> tuple[str, str] | None:
    """(qualified name, fix) when the call named `name` is not replay-safe. A name the
    module's imports do not bind is a local (a variable named `secrets` is not the module),
    but for the builtins `open` and `input`."""
    head = name.split(".")[0]
    if head not in imports:
        return (name, UNSAFE[name]) if name in ("open", "input") else None
    qualified = _qualified(name, imports)
    if qualified in UNSAFE:
        return qualified, UNSAFE[qualified]
    module = qualified.split(".")[0]
    if module in UNSAFE_MODULES and "." in qualified:
        return qualified, UNSAFE_MODULES[module]
    return None


def _calls(function: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            yield node


def check_source(
    name: str, source: str, module_source: str, filename: str, first_line: int
) -> list[Finding]:
    """Findings for one orchestrator: `source` its code, `module_source` its module's."""
    try:
        tree = ast.parse(textwrap.dedent(source))
        imports = _imports(ast.parse(module_source))
    except SyntaxError:
        return []
    found: list[Finding] = []
    seen: set[tuple[int, str]] = set()
    for call in _calls(tree):
        written = _dotted(call.func)
        if written is None:
            continue
        unsafe = unsafe_call(written, imports)
        if unsafe is None:
            continue
        line = first_line + call.lineno - 1
        if (line, unsafe[0]) in seen:
            continue
        seen.add((line, unsafe[0]))
        found.append(
            Finding(
                Level.WARNING,
                f"{filename}:{line}",
                f"orchestrator {name!r} calls {written}(), which gives a different answer "
                f"when the orchestrator replays",
                unsafe[1],
            )
        )
    return found


def check_orchestrator(name: str, function: Callable[..., Any], root: Path) -> list[Finding]:
    """Findings for a registered orchestrator function (its source read back)."""
    target = inspect.unwrap(function)
    try:
        lines, first_line = inspect.getsourcelines(target)
        module = inspect.getmodule(target)
        module_source = inspect.getsource(module) if module is not None else ""
        path = Path(inspect.getsourcefile(target) or "?")
    except (OSError, TypeError):
        return []
    try:
        filename = str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        filename = str(path)
    return check_source(name, "".join(lines), module_source, filename, first_line)
