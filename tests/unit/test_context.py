"""The orchestration context: every method, with azure-functions-durable's meaning."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from orchestration.core import (
    CreateTimer,
    DurableOrchestrationContext,
    OrchestrationRuntimeStatus,
    ScheduleActivity,
    TaskScheduled,
    TimerTask,
    execute,
)
from tests.unit.factories import at, completed, execution_started, scheduled, started
from tests.unit.simulation import T0, Simulation, run

Context = DurableOrchestrationContext


def double(x: int) -> int:
    return x * 2


def add_one(x: int) -> int:
    return x + 1


ACTIVITIES = {"double": double, "add_one": add_one}


def test_get_input_decodes_the_json_input() -> None:
    def orchestrator(ctx: Context) -> Any:
        return ctx.get_input()["items"][1]

    _, instance = run(orchestrator, {"items": ["a", "b"]})
    assert instance.output == "b"
    assert instance.status is OrchestrationRuntimeStatus.Completed


def test_a_plain_function_orchestrator_completes_with_its_return_value() -> None:
    _, instance = run(lambda ctx: 42)
    assert instance.output == 42


def test_instance_id_and_function_name_come_from_history() -> None:
    def orchestrator(ctx: Context) -> Any:
        return [ctx.instance_id, ctx.function_name, ctx.parent_instance_id]

    _, instance = run(orchestrator)
    assert instance.output == ["instance-1", "main", None]


def test_call_activity_schedules_the_activity_with_its_input() -> None:
    def orchestrator(ctx: Context) -> Any:
        result = yield ctx.call_activity("double", 21)
        return result

    result = execute(orchestrator, "i", [], [started(), execution_started()])
    assert result.actions == (ScheduleActivity(0, "double", "21"),)
    assert result.status is OrchestrationRuntimeStatus.Running
    assert [type(e).__name__ for e in result.new_events] == [
        "OrchestratorStarted",
        "ExecutionStarted",
        "TaskScheduled",
    ]


def test_chain_passes_each_result_to_the_next_activity() -> None:
    def orchestrator(ctx: Context) -> Any:
        x = ctx.get_input()
        x = yield ctx.call_activity("double", x)
        x = yield ctx.call_activity("add_one", x)
        x = yield ctx.call_activity("double", x)
        return x

    sim, instance = run(orchestrator, 5, ACTIVITIES)
    assert instance.output == 22
    assert sim.activity_calls == [("double", 5), ("add_one", 10), ("double", 11)]


def test_is_replaying_is_true_only_while_old_events_replay() -> None:
    seen: list[bool] = []

    def orchestrator(ctx: Context) -> Any:
        seen.append(ctx.is_replaying)
        yield ctx.call_activity("double", 1)
        seen.append(ctx.is_replaying)
        return None

    history = [started(), execution_started(), scheduled(0, "double", 1)]
    execute(orchestrator, "i", history, [started(1), completed(0, 2)])
    assert seen == [True, False]


def test_current_utc_datetime_is_the_time_of_the_step_from_history() -> None:
    def orchestrator(ctx: Context) -> Any:
        first = ctx.current_utc_datetime
        yield ctx.call_activity("double", 1)
        return [first.isoformat(), ctx.current_utc_datetime.isoformat()]

    history = [started(0), execution_started(), scheduled(0, "double", 1)]
    result = execute(orchestrator, "i", history, [started(30), completed(0, 2)])
    assert result.output == f'["{at(0).isoformat()}","{at(30).isoformat()}"]'


def test_new_uuid_is_the_same_at_every_replay_and_differs_within_a_step() -> None:
    def orchestrator(ctx: Context) -> Any:
        a, b = ctx.new_uuid(), ctx.new_uuid()
        yield ctx.call_activity("double", 1)
        return [a, b, str(ctx.new_guid())]

    history = [started(), execution_started(), scheduled(0, "double", 1)]
    first = execute(orchestrator, "i", history, [started(5), completed(0, 2)])
    second = execute(orchestrator, "i", history, [started(5), completed(0, 2)])
    assert first.output == second.output
    a, b, c = __import__("json").loads(first.output)
    assert len({a, b, c}) == 3
    assert uuid.UUID(a).version == 5


def test_fan_out_fan_in_collects_results_in_order() -> None:
    def orchestrator(ctx: Context) -> Any:
        tasks = [ctx.call_activity("double", i) for i in range(20)]
        results = yield ctx.task_all(tasks)
        return results

    _, instance = run(orchestrator, activities=ACTIVITIES, seed=7)
    assert instance.output == [i * 2 for i in range(20)]


def test_fan_out_schedules_every_activity_in_one_step() -> None:
    def orchestrator(ctx: Context) -> Any:
        results = yield ctx.task_all([ctx.call_activity("double", i) for i in range(3)])
        return results

    result = execute(orchestrator, "i", [], [started(), execution_started()])
    assert [a.id for a in result.actions] == [0, 1, 2]


def test_task_all_of_nothing_completes_at_once() -> None:
    def orchestrator(ctx: Context) -> Any:
        results = yield ctx.task_all([])
        return results

    _, instance = run(orchestrator)
    assert instance.output == []


def test_task_any_returns_the_first_task_to_complete() -> None:
    def orchestrator(ctx: Context) -> Any:
        approval = ctx.wait_for_external_event("Approval")
        timeout = ctx.create_timer(ctx.current_utc_datetime + timedelta(hours=1))
        winner = yield ctx.task_any([approval, timeout])
        if winner is approval:
            timeout.cancel()
            return ["approved", approval.result]
        return ["timed out", None]

    sim = Simulation({"main": orchestrator})
    sim.start("main")
    sim.run(fire_timers=False)
    sim.raise_event("instance-1", "Approval", {"by": "ann"})
    sim.run()
    assert sim.instances["instance-1"].output == ["approved", {"by": "ann"}]

    sim2, instance = run(orchestrator)
    assert instance.output == ["timed out", None]
    assert sim2.now >= T0 + timedelta(hours=1)


def test_task_any_and_task_all_nest() -> None:
    def orchestrator(ctx: Context) -> Any:
        pair = ctx.task_all([ctx.call_activity("double", 1), ctx.call_activity("double", 2)])
        slow = ctx.create_timer(ctx.current_utc_datetime + timedelta(days=1))
        winner = yield ctx.task_any([pair, slow])
        both = yield ctx.task_all([ctx.task_any([ctx.call_activity("add_one", 10)]), winner])
        return [winner.result, both[0].result]

    _, instance = run(orchestrator, activities=ACTIVITIES)
    assert instance.output == [[2, 4], 11]


def test_a_completed_task_yielded_again_resumes_at_once() -> None:
    def orchestrator(ctx: Context) -> Any:
        task = ctx.call_activity("double", 4)
        first = yield task
        again = yield task
        return first + again

    _, instance = run(orchestrator, activities=ACTIVITIES)
    assert instance.output == 16


def test_create_timer_schedules_a_durable_timer_and_resumes_when_it_fires() -> None:
    def orchestrator(ctx: Context) -> Any:
        fire_at = ctx.current_utc_datetime + timedelta(minutes=5)
        timer = yield ctx.create_timer(fire_at)
        return [ctx.current_utc_datetime >= fire_at, timer is None]

    _sim, instance = run(orchestrator)
    assert instance.output == [True, True]
    assert isinstance(instance.results[0].actions[0], CreateTimer)


def test_a_cancelled_timer_does_not_hold_the_orchestration_open() -> None:
    def orchestrator(ctx: Context) -> Any:
        timer = ctx.create_timer(ctx.current_utc_datetime + timedelta(days=3))
        work = ctx.call_activity("double", 3)
        winner = yield ctx.task_any([work, timer])
        timer.cancel()
        assert isinstance(timer, TimerTask) and timer.is_cancelled
        return winner.result

    sim = Simulation({"main": orchestrator}, ACTIVITIES)
    instance = sim.start("main")
    sim.run(fire_timers=False)
    assert instance.status is OrchestrationRuntimeStatus.Completed
    assert instance.output == 6
    sim.run()  # the stale timer fires later and is ignored
    assert instance.status is OrchestrationRuntimeStatus.Completed
    assert any("already completed" in d.reason for d in instance.results[-1].dropped_events)


def test_an_event_raised_before_the_wait_is_buffered() -> None:
    def orchestrator(ctx: Context) -> Any:
        yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=10))
        value = yield ctx.wait_for_external_event("Go")
        return value

    sim = Simulation({"main": orchestrator})
    instance = sim.start("main")
    sim.raise_event("instance-1", "Go", 7)
    sim.run()
    assert instance.output == 7


def test_several_waits_on_one_name_are_served_in_arrival_order() -> None:
    def orchestrator(ctx: Context) -> Any:
        first = ctx.wait_for_external_event("Item")
        second = ctx.wait_for_external_event("Item")
        values = yield ctx.task_all([first, second])
        third = yield ctx.wait_for_external_event("item")  # names are case-insensitive
        return [*values, third]

    sim = Simulation({"main": orchestrator})
    instance = sim.start("main")
    sim.run()
    for value in ("a", "b", "c"):
        sim.raise_event("instance-1", "ITEM", value)
    sim.run()
    assert instance.output == ["a", "b", "c"]


def test_sub_orchestrator_runs_as_a_child_instance_and_returns_its_output() -> None:
    def child(ctx: Context) -> Any:
        value = yield ctx.call_activity("double", ctx.get_input())
        return [value, ctx.parent_instance_id]

    def parent(ctx: Context) -> Any:
        first = yield ctx.call_sub_orchestrator("child", 4)
        named = yield ctx.call_sub_orchestrator("child", 5, instance_id="my-child")
        return [first, named]

    sim = Simulation({"parent": parent, "child": child}, ACTIVITIES)
    instance = sim.start("parent", instance_id="p")
    sim.run()
    assert instance.output == [[8, "p"], [10, "p"]]
    assert "my-child" in sim.instances
    assert "p:0" in sim.instances


def test_custom_status_is_reported_with_the_step() -> None:
    def orchestrator(ctx: Context) -> Any:
        ctx.set_custom_status({"stage": "charging"})
        yield ctx.call_activity("double", 1)
        ctx.set_custom_status("done")
        return None

    result = execute(orchestrator, "i", [], [started(), execution_started()])
    assert result.custom_status == '{"stage":"charging"}'
    _, instance = run(orchestrator, activities=ACTIVITIES)
    assert instance.custom_status == "done"


def test_version_comes_from_the_start() -> None:
    sim = Simulation({"main": lambda ctx: ctx.version})
    instance = sim.start("main", version="2.1")
    sim.run()
    assert instance.output == "2.1"


def test_continue_as_new_restarts_with_the_new_input_and_a_fresh_history() -> None:
    def orchestrator(ctx: Context) -> Any:
        n = ctx.get_input()
        yield ctx.call_activity("add_one", n)
        if n < 3:
            ctx.continue_as_new(n + 1)
            return None
        return n

    _sim, instance = run(orchestrator, 0, ACTIVITIES)
    assert instance.output == 3
    assert len(instance.generations) == 4
    statuses = [g[-1].event_type.value for g in instance.generations]
    assert statuses == ["ContinueAsNew", "ContinueAsNew", "ContinueAsNew", "ExecutionCompleted"]
    assert all(len(g) < 10 for g in instance.generations)


def test_continue_as_new_can_keep_unprocessed_events() -> None:
    def orchestrator(ctx: Context) -> Any:
        generation = ctx.get_input()
        if generation == 0:
            yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=1))
            ctx.continue_as_new(1, preserve_unprocessed_events=True)
            return None
        value = yield ctx.wait_for_external_event("Late")
        return value

    sim = Simulation({"main": orchestrator})
    instance = sim.start("main", 0)
    sim.raise_event("instance-1", "Late", "kept")
    sim.run()
    assert instance.output == "kept"


def test_continue_as_new_drops_unprocessed_events_by_default() -> None:
    def orchestrator(ctx: Context) -> Any:
        if ctx.get_input() == 0:
            yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=1))
            ctx.continue_as_new(1)
            return None
        winner = yield ctx.task_any(
            [
                ctx.wait_for_external_event("Late"),
                ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=5)),
            ]
        )
        return "event" if isinstance(winner.result, str) else "timeout"

    sim = Simulation({"main": orchestrator})
    instance = sim.start("main", 0)
    sim.raise_event("instance-1", "Late", "lost")
    sim.run()
    assert instance.output == "timeout"


def test_send_event_raises_an_event_on_another_instance() -> None:
    def receiver(ctx: Context) -> Any:
        value = yield ctx.wait_for_external_event("Ping")
        return value

    def sender(ctx: Context) -> Any:
        ctx.send_event("r", "Ping", "hello")
        yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=1))
        return "sent"

    sim = Simulation({"receiver": receiver, "sender": sender})
    sim.start("receiver", instance_id="r")
    sim.start("sender", instance_id="s")
    sim.run()
    assert sim.instances["r"].output == "hello"
    assert any(e.event_type.value == "EventSent" for e in sim.instances["s"].history)


def test_results_of_a_step_are_recorded_as_history_events_after_the_new_events() -> None:
    def orchestrator(ctx: Context) -> Any:
        a = yield ctx.call_activity("double", 1)
        return a

    history = [started(), execution_started(), scheduled(0, "double", 1)]
    result = execute(orchestrator, "i", history, [started(1), completed(0, 2)])
    assert [e.event_type.value for e in result.new_events] == [
        "OrchestratorStarted",
        "TaskCompleted",
        "ExecutionCompleted",
    ]
    assert result.output == "2"
    assert not any(isinstance(e, TaskScheduled) for e in result.new_events)


def test_a_live_session_runs_each_line_of_the_orchestrator_once() -> None:
    from orchestration.core import OrchestrationSession

    executed: list[int] = []

    def orchestrator(ctx: Context) -> Any:
        for i in range(5):
            executed.append(i)
            yield ctx.call_activity("x", i)
        return len(executed)

    session = OrchestrationSession({"main": orchestrator}, "i")
    result = session.step([started(0), execution_started()])
    for i in range(5):
        result = session.step([started(i + 1), completed(i, i)])
    assert executed == [0, 1, 2, 3, 4]
    assert result.output == "5"
