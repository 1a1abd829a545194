"""Property-based: any generated workflow, run in any order, replays identically from any prefix.

The simulation checks at every step that a full replay of the recorded prefix gives exactly
what the live session gave; here hypothesis supplies the workflows and the orderings.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.core import (
    DurableOrchestrationContext,
    OrchestrationRuntimeStatus,
    Replayer,
    RetryOptions,
    TaskFailedError,
)
from tests.unit.simulation import Simulation

Context = DurableOrchestrationContext

step = st.one_of(
    st.tuples(st.just("activity"), st.booleans()),
    st.tuples(st.just("fanout"), st.integers(0, 6), st.booleans()),
    st.tuples(st.just("timer"), st.integers(1, 600)),
    st.tuples(st.just("event"), st.sampled_from(["a", "b"])),
    st.tuples(st.just("race"), st.integers(1, 60)),
    st.tuples(st.just("retry"), st.integers(0, 3)),
    st.tuples(st.just("child"), st.integers(0, 2)),
    st.just(("uuid",)),
)


def work(value: Any) -> Any:
    if isinstance(value, dict) and value.get("fail"):
        raise ValueError(f"failing on purpose: {value['n']}")
    return value


class Counter:
    """Fails the first `k` calls for each key: deterministic per activity input."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def __call__(self, value: Any) -> Any:
        key, failures = value["key"], value["failures"]
        self.calls[key] = self.calls.get(key, 0) + 1
        if self.calls[key] <= failures:
            raise ConnectionError(f"{key} attempt {self.calls[key]}")
        return key


def child(ctx: Context) -> Any:
    n = ctx.get_input()
    results = yield ctx.task_all([ctx.call_activity("work", i) for i in range(n)])
    return sum(results)


def interpreter(ctx: Context) -> Any:
    trace: list[Any] = []
    for index, op in enumerate(ctx.get_input()):
        kind = op[0]
        try:
            if kind == "activity":
                trace.append((yield ctx.call_activity("work", {"n": index, "fail": op[1]})))
            elif kind == "fanout":
                width, fail = op[1], op[2]
                tasks = [
                    ctx.call_activity("work", {"n": i, "fail": fail and i == width - 1})
                    for i in range(width)
                ]
                trace.append((yield ctx.task_all(tasks)))
            elif kind == "timer":
                yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=op[1]))
                trace.append("tick")
            elif kind == "event":
                trace.append((yield ctx.wait_for_external_event(op[1])))
            elif kind == "race":
                timer = ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=op[1]))
                activity = ctx.call_activity("work", index)
                winner = yield ctx.task_any([timer, activity])
                if winner is activity:
                    timer.cancel()
                trace.append("activity" if winner is activity else "timer")
            elif kind == "retry":
                options = RetryOptions(1000, 3)
                payload = {"key": f"{ctx.instance_id}-{index}", "failures": op[1]}
                trace.append((yield ctx.call_activity_with_retry("flaky", options, payload)))
            elif kind == "child":
                trace.append((yield ctx.call_sub_orchestrator("child", op[1])))
            elif kind == "uuid":
                trace.append(ctx.new_uuid())
        except TaskFailedError as error:
            trace.append(["failed", error.error_type])
    return trace


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    program=st.lists(step, max_size=8),
    seed=st.integers(0, 10_000),
    events=st.lists(st.sampled_from(["a", "b"]), max_size=4),
    max_timer_minutes=st.sampled_from([None, 1, 5]),
)
def test_any_workflow_replays_identically_from_every_prefix(
    program: list[tuple[Any, ...]],
    seed: int,
    events: list[str],
    max_timer_minutes: int | None,
) -> None:
    needed = [op[1] for op in program if op[0] == "event"]
    orchestrators = {"main": interpreter, "child": child}
    max_timer = timedelta(minutes=max_timer_minutes) if max_timer_minutes else None
    sim = Simulation(
        orchestrators, {"work": work, "flaky": Counter()}, seed=seed, max_timer_interval=max_timer
    )
    instance = sim.start("main", program, instance_id="main-1")
    for name in events + needed:
        sim.raise_event("main-1", name, name.upper())
    sim.run()

    assert instance.status is OrchestrationRuntimeStatus.Completed, instance.failure
    assert len(instance.output) == len(program)
    replayer = Replayer(orchestrators, max_timer_interval=max_timer)
    report = replayer.replay("main-1", [e.to_dict() for e in instance.history])
    assert report.is_deterministic, report.error


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), width=st.integers(1, 30))
def test_fan_out_results_are_in_call_order_whatever_the_completion_order(
    seed: int, width: int
) -> None:
    def fan(ctx: Context) -> Any:
        results = yield ctx.task_all([ctx.call_activity("work", i) for i in range(width)])
        return results

    sim = Simulation({"main": fan}, {"work": work}, seed=seed)
    instance = sim.start("main")
    sim.run()
    assert instance.output == list(range(width))
