"""The torture run's workload: a seeded mix of orchestrations, each with its expected result.

See tests/apps/chaos_app/function_app.py for the orchestrators.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

KINDS = ("chain", "fan", "timer", "event", "parent", "retry", "wide")
WEIGHTS = (3, 2, 2, 2, 1, 1, 1)


@dataclass
class Spec:
    """One orchestration to start, and what it must end with."""

    instance_id: str
    name: str
    input: Any
    expected_output: Any
    expected_status: str = "Completed"
    # External events the harness raises: (seconds after start, name, data).
    events: list[tuple[float, str, Any]] = field(default_factory=list)
    # Sub-orchestrations it starts: (instance id, expected output).
    children: list[tuple[str, Any]] = field(default_factory=list)
    # Activity keys it must have run (at least once each).
    activity_keys: list[str] = field(default_factory=list)


def make_spec(kind: str, instance_id: str, rng: random.Random) -> Spec:
    if kind == "chain":
        start, n = rng.randint(0, 1000), rng.randint(2, 6)
        return Spec(
            instance_id,
            "chain",
            {"start": start, "n": n},
            start + n,
            activity_keys=[f"{instance_id}:{i}" for i in range(n)],
        )
    if kind in ("fan", "wide"):
        # fan: up to 8 activities run in the orchestrating process, more go through the
        # queue; wide: enough that the work items carry batches of activities (2-4 each).
        n = rng.choice((3, 6, 10, 14) if kind == "fan" else (100, 150, 200))
        return Spec(
            instance_id,
            "fan",
            {"n": n},
            sum(i * i for i in range(n)),
            activity_keys=[f"{instance_id}:{i}" for i in range(n)],
        )
    if kind == "timer":
        seconds = rng.randint(1, 6)
        return Spec(
            instance_id,
            "timer",
            {"seconds": seconds},
            f"fired after {seconds}s",
            activity_keys=[f"{instance_id}:0"],
        )
    if kind == "event":
        data = {"token": rng.randint(0, 10**6)}
        return Spec(
            instance_id,
            "event",
            {},
            {"got": data},
            events=[(rng.uniform(0.0, 8.0), "Go", data)],
            activity_keys=[f"{instance_id}:0"],
        )
    if kind == "parent":
        k = rng.randint(2, 4)
        children = [(f"{instance_id}:c{j}", j + 1) for j in range(k)]
        return Spec(
            instance_id,
            "parent",
            {"children": k},
            [j + 1 for j in range(k)],
            children=children,
        )
    if kind == "retry":
        failures = rng.randint(1, 3)
        return Spec(
            instance_id,
            "retry",
            {"failures": failures},
            f"ok {instance_id}",
            activity_keys=[instance_id],
        )
    raise ValueError(f"unknown kind {kind!r}")


def make_workload(count: int, seed: int, prefix: str = "t") -> list[Spec]:
    """`count` orchestrations, every kind at least once when count allows."""
    rng = random.Random(seed)
    kinds = list(KINDS[: min(count, len(KINDS))])
    kinds += rng.choices(KINDS, WEIGHTS, k=count - len(kinds))
    rng.shuffle(kinds)
    return [make_spec(kind, f"{prefix}{i:04d}-{kind}", rng) for i, kind in enumerate(kinds)]
