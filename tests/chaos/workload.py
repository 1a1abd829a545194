"""The torture run's workload: a seeded mix of orchestrations, each with its expected result.

See tests/apps/chaos_app/function_app.py for the orchestrators.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

KINDS = ("chain", "fan", "timer", "event", "parent", "retry", "wide", "entity", "bound")
WEIGHTS = (3, 2, 2, 2, 1, 1, 1, 2, 1)
# The `entity` kind's orchestrator, and how many `counter` entities its instances share.
ENTITY_ORCHESTRATOR = "tally"
COUNTERS = 4


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
    # What it adds to each shared `counter` entity, by key (each add exactly once).
    counter_adds: dict[str, int] = field(default_factory=dict)


def counter_keys(prefix: str = "") -> list[str]:
    """The keys of the `counter` entities a workload's `entity` orchestrations share."""
    return [f"{prefix}counter-{j}" for j in range(COUNTERS)]


def entity_steps(keys: list[str], rng: random.Random) -> list[list[Any]]:
    """An `entity` orchestration's steps (see `tally` in the chaos app): adds of 1 to one
    main counter by signals and calls, calls to two counters at once, maybe a rolled-back
    `boom` and an activity; a final `get` of the main counter, then maybe a last signal to
    another counter that nothing waits for (outstanding when the orchestration ends)."""
    main = rng.choice(keys)
    steps: list[list[Any]] = []
    for _ in range(rng.randint(3, 7)):
        kind = rng.choices(("signal", "call", "pair", "boom", "activity"), (4, 3, 1, 1, 1))[0]
        if kind == "signal":
            steps.append(["signal", main, 1])
        elif kind == "call":
            steps.append(["call", [[main, 1]]])
        elif kind == "pair":
            steps.append(["call", [[key, 1] for key in rng.sample(keys, 2)]])
        elif kind == "boom":
            steps.append(["boom", main])
        else:
            steps.append(["activity"])
    steps.append(["get", main])
    if rng.random() < 0.5:
        steps.append(["signal", rng.choice(keys), 1])
    return steps


def make_spec(
    kind: str, instance_id: str, rng: random.Random, keys: list[str] | None = None
) -> Spec:
    """One orchestration of `kind`; an `entity` one uses the counters `keys` (default
    `counter_keys()`)."""
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
    if kind == "bound":
        # 12 squares: more than localActivityMaxBatch (8), so they go through the queue.
        n = rng.choice((3, 6, 12))
        return Spec(
            instance_id,
            "bound",
            {"n": n},
            [sum(i * i for i in range(n)), "0"],
            activity_keys=[f"{instance_id}:{i}" for i in range(n)] + [f"{instance_id}:sum"],
        )
    if kind == "entity":
        steps = entity_steps(keys or counter_keys(), rng)
        adds: dict[str, int] = {}
        ops = 0
        for step in steps:
            if step[0] == "signal":
                adds[step[1]] = adds.get(step[1], 0) + step[2]
            elif step[0] == "call":
                for key, amount in step[1]:
                    adds[key] = adds.get(key, 0) + amount
            ops += len(step[1]) if step[0] == "call" else int(step[0] != "activity")
        return Spec(
            instance_id,
            ENTITY_ORCHESTRATOR,
            {"steps": steps},
            {"ops": ops, "added": adds},
            activity_keys=[
                f"{instance_id}:e{i}" for i, step in enumerate(steps) if step[0] == "activity"
            ],
            counter_adds=adds,
        )
    raise ValueError(f"unknown kind {kind!r}")


def counter_totals(specs: list[Spec]) -> dict[str, int]:
    """Each counter's expected final value: every add of every orchestration, once."""
    totals: dict[str, int] = {}
    for spec in specs:
        for key, amount in spec.counter_adds.items():
            totals[key] = totals.get(key, 0) + amount
    return totals


def make_workload(count: int, seed: int, prefix: str = "t") -> list[Spec]:
    """`count` orchestrations, every kind at least once when count allows. The `entity`
    orchestrations share the counters `counter_keys(prefix)` and know their final values
    (input "max"), so that a call reading more than that reports an operation run twice."""
    rng = random.Random(seed)
    kinds = list(KINDS[: min(count, len(KINDS))])
    kinds += rng.choices(KINDS, WEIGHTS, k=count - len(kinds))
    rng.shuffle(kinds)
    keys = counter_keys(prefix)
    specs = [make_spec(kind, f"{prefix}{i:04d}-{kind}", rng, keys) for i, kind in enumerate(kinds)]
    totals = counter_totals(specs)
    for spec in specs:
        if spec.name == ENTITY_ORCHESTRATOR:
            spec.input["max"] = {key: totals.get(key, 0) for key in keys}
    return specs
