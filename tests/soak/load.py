"""The soak's offered load: an endless seeded mix of the chaos workload's kinds.

Each workflow is a `tests.chaos.workload.Spec` (its input, expected output, events to raise,
sub-orchestrations, activity keys), so the soak checks every instance as the torture run does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from tests.chaos.workload import Spec, make_spec

# (kind, weight) of the mix, one kind per orchestration pattern of tests/apps/chaos_app:
# chains of 2-6 activities; fan-outs of 3, 6, 10 or 14 (more than 8 go through the
# work-item queue); durable timers of 1-6 s; an external event raised 0-8 s after the
# start; parents of 2-4 sub-orchestrations; retries of an activity failing 1-3 times;
# entity tallies that signal and call 4 shared counters (their final counts are checked).
MIX: tuple[tuple[str, int], ...] = (
    ("chain", 3),
    ("fan", 2),
    ("timer", 2),
    ("event", 2),
    ("parent", 1),
    ("retry", 1),
    ("entity", 2),
)


@dataclass
class Offered:
    """The n-th workflow of the soak, the same for the same seed and mix."""

    seed: int
    prefix: str
    mix: tuple[tuple[str, int], ...] = MIX
    count: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def next(self) -> tuple[str, Spec]:
        """The next workflow: its kind and its spec."""
        kinds, weights = zip(*self.mix, strict=True)
        kind = self._rng.choices(kinds, weights)[0]
        instance_id = f"{self.prefix}{self.count:06d}-{kind}"
        self.count += 1
        return kind, make_spec(kind, instance_id, self._rng)
