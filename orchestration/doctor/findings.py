"""What the doctor reports: one finding per problem, with where, what and what to do."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Level(StrEnum):
    ERROR = "error"  # the host will refuse the app, or the feature will not work
    WARNING = "warning"  # it runs, but not as the user may expect
    NOTE = "note"  # worth knowing


@dataclass(frozen=True)
class Finding:
    level: Level
    where: str  # "host.json", "function_app.py:12", "function 'name'"
    problem: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"level": self.level.value, "where": self.where, "problem": self.problem,
                "fix": self.fix}  # fmt: skip
