"""Suspend, resume and terminate arrive as events; duplicates are dropped, not applied twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from orchestration.core import (
    DurableOrchestrationContext,
    OrchestrationRuntimeStatus,
    TaskCompleted,
    execute,
)
from tests.unit.factories import completed, execution_started, scheduled, started
from tests.unit.simulation import Simulation

Context = DurableOrchestrationContext


def approval_flow(ctx: Context) -> Any:
    first = yield ctx.wait_for_external_event("Step")
    second = yield ctx.wait_for_external_event("Step")
    return [first, second]


def test_a_suspended_instance_takes_no_step_and_buffers_events_until_resumed() -> None:
    sim = Simulation({"main": approval_flow})
    instance = sim.start("main")
    sim.run()
    sim.suspend("instance-1", "maintenance")
    sim.run()
    assert instance.status is OrchestrationRuntimeStatus.Suspended
    sim.raise_event("instance-1", "Step", 1)
    sim.raise_event("instance-1", "Step", 2)
    sim.run()
    assert instance.status is OrchestrationRuntimeStatus.Suspended
    assert instance.output is None
    assert all(not r.actions for r in instance.results[-2:])
    sim.resume("instance-1")
    sim.run()
    assert instance.status is OrchestrationRuntimeStatus.Completed
    assert instance.output == [1, 2]


def test_suspend_and_resume_are_states_not_counters() -> None:
    """Suspending a suspended instance changes nothing, so one resume resumes it; resuming a
    running instance changes nothing either (as in Durable Functions)."""
    sim = Simulation({"main": approval_flow})
    instance = sim.start("main")
    sim.run()
    sim.resume("instance-1")  # not suspended: nothing to resume
    sim.run()
    assert instance.status is OrchestrationRuntimeStatus.Running
    sim.suspend("instance-1", "first")
    sim.suspend("instance-1", "second")
    sim.run()
    assert instance.status is OrchestrationRuntimeStatus.Suspended
    sim.raise_event("instance-1", "Step", 1)
    sim.resume("instance-1")
    sim.run()
    assert instance.status is OrchestrationRuntimeStatus.Running
    sim.raise_event("instance-1", "Step", 2)
    sim.run()
    assert instance.status is OrchestrationRuntimeStatus.Completed
    assert instance.output == [1, 2]
    kinds = [e.event_type.value for e in instance.history]
    assert kinds.count("ExecutionSuspended") == 1 and kinds.count("ExecutionResumed") == 1


def test_activity_results_that_arrive_while_suspended_apply_on_resume() -> None:
    def chain(ctx: Context) -> Any:
        a = yield ctx.call_activity("slow", 1)
        b = yield ctx.call_activity("slow", a)
        return b

    sim = Simulation({"main": chain}, {"slow": lambda x: x + 1})
    instance = sim.start("main")
    sim.step(instance)
    sim.suspend("instance-1")
    sim.run()
    assert instance.status is OrchestrationRuntimeStatus.Suspended
    assert sim.activity_calls == [("slow", 1)]
    sim.resume("instance-1")
    sim.run()
    assert instance.output == 3


def test_terminate_ends_the_instance_with_the_reason() -> None:
    def forever(ctx: Context) -> Any:
        while True:
            yield ctx.create_timer(ctx.current_utc_datetime + timedelta(hours=1))

    sim = Simulation({"main": forever})
    instance = sim.start("main")
    sim.pump(7)
    assert instance.status is OrchestrationRuntimeStatus.Running
    sim.terminate("instance-1", "no longer needed")
    sim.run(fire_timers=False)
    assert instance.status is OrchestrationRuntimeStatus.Terminated
    assert instance.output == "no longer needed"
    assert instance.history[-1].event_type.value == "ExecutionCompleted"


def test_terminate_works_on_a_suspended_instance() -> None:
    sim = Simulation({"main": approval_flow})
    instance = sim.start("main")
    sim.run()
    sim.suspend("instance-1")
    sim.terminate("instance-1", "bye")
    sim.run()
    assert instance.status is OrchestrationRuntimeStatus.Terminated


def test_a_duplicated_activity_result_is_dropped_and_not_applied_twice() -> None:
    def orchestrator(ctx: Context) -> Any:
        a = yield ctx.call_activity("x", 1)
        b = yield ctx.call_activity("x", 2)
        return [a, b]

    history = [started(0), execution_started(), scheduled(0, "x", 1)]
    result = execute(orchestrator, "i", history, [started(1), completed(0, "A"), completed(0, "A")])
    completions = [e for e in result.new_events if isinstance(e, TaskCompleted)]
    assert len(completions) == 1
    assert [d.reason for d in result.dropped_events] == [
        "task 0 has already completed (duplicate delivery)"
    ]

    later = execute(
        orchestrator, "i", history + list(result.new_events), [started(2), completed(0, "A")]
    )
    assert later.new_events[1:] == ()
    assert later.status is OrchestrationRuntimeStatus.Running


def test_a_result_for_a_task_never_scheduled_is_dropped() -> None:
    def orchestrator(ctx: Context) -> Any:
        a = yield ctx.call_activity("x", 1)
        return a

    history = [started(0), execution_started(), scheduled(0, "x", 1)]
    result = execute(orchestrator, "i", history, [started(1), completed(9, "?")])
    assert result.dropped_events[0].reason == "no task 9 was scheduled by this orchestration"
    assert result.status is OrchestrationRuntimeStatus.Running


def test_reordered_results_of_a_fan_out_give_the_same_output() -> None:
    def orchestrator(ctx: Context) -> Any:
        results = yield ctx.task_all([ctx.call_activity("x", i) for i in range(3)])
        return results

    history = [started(0), execution_started(), *[scheduled(i, "x", i) for i in range(3)]]
    forward = execute(
        orchestrator, "i", history, [started(1), *[completed(i, i) for i in range(3)]]
    )
    backward = execute(
        orchestrator, "i", history, [started(1), *[completed(i, i) for i in reversed(range(3))]]
    )
    assert forward.output == backward.output == "[0,1,2]"
