"""The mapping from a step's actions to the engine's outgoing messages, and rewind's edit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from orchestration.core import (
    CompleteOrchestration,
    CreateTimer,
    DurableOrchestrationContext,
    OrchestrationRuntimeStatus,
    ScheduleActivity,
    SendEvent,
    StartSubOrchestration,
)
from orchestration.core.history import (
    ExecutionCompleted,
    ParentInstance,
    SubOrchestrationInstanceFailed,
    TaskCompleted,
)
from orchestration.core.outbox import (
    DeliverEvent,
    FireTimer,
    RunActivity,
    Sender,
    StartChild,
    outgoing,
)
from orchestration.core.rewind import rewound
from tests.unit.factories import execution_started, failed, scheduled, started
from tests.unit.simulation import T0, Simulation

Context = DurableOrchestrationContext


def test_each_action_becomes_its_outgoing_message_with_an_idempotency_id() -> None:
    parent = ParentInstance("p", "parent", 7)
    sender = Sender("i", "main", "x1", parent)
    actions = [
        ScheduleActivity(0, "work", '"a"'),
        CreateTimer(1, T0 + timedelta(minutes=1)),
        StartSubOrchestration(2, "child", "i:child", None),
        SendEvent(3, "other", "Go", "1"),
        CompleteOrchestration(-1, OrchestrationRuntimeStatus.Completed, '"done"'),
    ]
    found = outgoing(sender, actions, T0)
    assert found[0] == RunActivity(0, "work", '"a"')
    assert isinstance(found[1], FireTimer) and found[1].message_id == "x1:timer:1"
    assert isinstance(found[2], StartChild)
    assert found[2].parent == ParentInstance("i", "main", 2)
    assert found[2].message_id == "x1:sub:2"
    assert isinstance(found[3], DeliverEvent) and found[3].instance_id == "other"
    assert found[3].message_id == "i:x1:event:3"
    assert isinstance(found[4], DeliverEvent) and found[4].instance_id == "p"
    assert found[4].event.task_scheduled_id == 7  # type: ignore[attr-defined]


def test_a_terminated_child_fails_its_parents_task_saying_so() -> None:
    def child(ctx: Context) -> Any:
        yield ctx.wait_for_external_event("never")

    def main(ctx: Context) -> Any:
        try:
            yield ctx.call_sub_orchestrator("child", None, "kid")
        except Exception as error:
            return str(error)
        return "unreachable"

    sim = Simulation({"main": main, "child": child})
    parent = sim.start("main")
    sim.run()
    sim.terminate("kid", "no longer needed")
    sim.run()
    assert parent.status is OrchestrationRuntimeStatus.Completed
    assert "was terminated: no longer needed" in parent.output


def test_rewind_takes_out_the_failures_of_the_last_step_only() -> None:
    boom = failed(0).failure
    history = [
        started(0),
        execution_started("main"),
        scheduled(0, "a"),
        started(1),
        failed(0),
        scheduled(1, "b"),
        started(2),
        failed(1),
        SubOrchestrationInstanceFailed(-1, T0, 2, boom),
        TaskCompleted(-1, T0, 3, "1"),
        ExecutionCompleted(-1, T0, OrchestrationRuntimeStatus.Failed, None, boom),
    ]
    kept = rewound(history)
    assert kept == [*history[:7], history[9]]  # the earlier TaskFailed stays
