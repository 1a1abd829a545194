"""A fault-injection seam: tests make a chosen storage step fail (raise, or kill the process).

Off by default. Points are named where the engine crosses a durability boundary
("commit.before", "commit.after", "send.control", "send.activity", ...). A test arms a
point through the API, or, for another process, through the `ORCHESTRATION_FAULTS`
environment variable: `commit.after=raise:1,send.activity=exit:2` fails the first call (or
the second) at that point by raising InjectedFault, or by ending the process at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


class InjectedFault(RuntimeError):
    """Raised at an armed fault point."""


@dataclass(slots=True)
class _Rule:
    action: str
    on_call: int
    calls: int = 0


@dataclass(slots=True)
class FaultInjector:
    """Counts calls per point and fails the armed ones."""

    rules: dict[str, _Rule] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_environment(cls) -> FaultInjector:
        injector = cls()
        spec = os.environ.get("ORCHESTRATION_FAULTS", "")
        for item in filter(None, (part.strip() for part in spec.split(","))):
            point, _, rule = item.partition("=")
            action, _, count = rule.partition(":")
            injector.arm(point, action or "raise", int(count or 1))
        return injector

    def arm(self, point: str, action: str = "raise", on_call: int = 1) -> None:
        if action not in ("raise", "exit"):
            raise ValueError(f"unknown fault action {action!r} (use 'raise' or 'exit')")
        self.rules[point] = _Rule(action, on_call)

    def disarm(self, point: str | None = None) -> None:
        if point is None:
            self.rules.clear()
        else:
            self.rules.pop(point, None)

    async def check(self, point: str) -> None:
        self.hits[point] = self.hits.get(point, 0) + 1
        rule = self.rules.get(point)
        if rule is None:
            return
        rule.calls += 1
        if rule.calls != rule.on_call:
            return
        if rule.action == "exit":
            os._exit(86)
        raise InjectedFault(f"injected fault at {point} (call {rule.calls})")
