"""What a process tree uses, read from /proc: resident memory, CPU time, open descriptors.

A host started with --workers N is a supervisor with N worker children; its figures are the
sum over the tree, with each process also listed on its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcUsage:
    """One process at one moment."""

    pid: int
    rss_kib: int
    cpu_seconds: float
    fds: int
    threads: int


@dataclass(frozen=True)
class TreeUsage:
    """A process and its descendants at one moment (empty when the root is gone)."""

    processes: tuple[ProcUsage, ...] = field(default_factory=tuple)

    @property
    def rss_kib(self) -> int:
        return sum(p.rss_kib for p in self.processes)

    @property
    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds for p in self.processes)

    @property
    def fds(self) -> int:
        return sum(p.fds for p in self.processes)


def _status_fields(pid: int) -> dict[str, str]:
    text = (PROC / str(pid) / "status").read_text()
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key: value.strip() for key, value in pairs}


def _parent_and_cpu(pid: int) -> tuple[int, float]:
    text = (PROC / str(pid) / "stat").read_text()
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    rest = text[text.rindex(")") + 2 :].split()
    return int(rest[1]), (int(rest[11]) + int(rest[12])) / TICKS


def usage_of(pid: int) -> ProcUsage | None:
    """One process's figures; None when it has exited (or exits while being read)."""
    try:
        status = _status_fields(pid)
        _, cpu = _parent_and_cpu(pid)
        fds = len(os.listdir(PROC / str(pid) / "fd"))
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None
    # A zombie has no VmRSS line.
    rss = int(status.get("VmRSS", "0 kB").split()[0])
    return ProcUsage(pid, rss, cpu, fds, int(status.get("Threads", "0")))


def parents() -> dict[int, int]:
    """Parent pid of every process visible now."""
    found: dict[int, int] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            found[int(entry.name)] = _parent_and_cpu(int(entry.name))[0]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return found


def descendants(pid: int, parent_of: dict[int, int]) -> list[int]:
    """`pid`'s children, grandchildren, ... (from one `parents()` reading)."""
    children: dict[int, list[int]] = {}
    for child, parent in parent_of.items():
        children.setdefault(parent, []).append(child)
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return sorted(found)


def tree_usage(pid: int | None, parent_of: dict[int, int] | None = None) -> TreeUsage:
    """Figures of `pid` and its descendants; empty when `pid` is None or gone."""
    if pid is None:
        return TreeUsage()
    root = usage_of(pid)
    if root is None:
        return TreeUsage()
    parent_of = parents() if parent_of is None else parent_of
    rest = (usage_of(child) for child in descendants(pid, parent_of))
    return TreeUsage((root, *(u for u in rest if u is not None)))
