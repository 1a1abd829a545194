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

from orchestration.azure.errors import StorageError


class InjectedFault(RuntimeError):
    """Raised at an armed fault point."""


@dataclass(slots=True)
class _Rule:
    action: str
    on_call: int
    times: int = 1
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

    def arm(self, point: str, action: str = "raise", on_call: int = 1, times: int = 1) -> None:
        """Fail calls `on_call` .. `on_call + times - 1` at `point`.

        `raise` raises InjectedFault; `exit` ends the process; `outage` raises the transport's
        StorageError for a refused connection, as a storage outage does.
        """
        if action not in ("raise", "exit", "outage"):
            raise ValueError(f"unknown fault action {action!r} (use raise, exit or outage)")
        self.rules[point] = _Rule(action, on_call, times)

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
        if not rule.on_call <= rule.calls < rule.on_call + rule.times:
            return
        if rule.action == "exit":
            os._exit(86)
        if rule.action == "outage":
            raise StorageError(0, "InjectedOutage", f"injected outage at {point}", point)
        raise InjectedFault(f"injected fault at {point} (call {rule.calls})")
