"""An in-memory engine for core tests: runs orchestrations to the end without storage.

Every step runs twice, once in a live session and once by full replay of the stored history,
and the two results must be equal: so every run in the unit suite is also a proof that the
live session and replay agree. Every finished history is kept in `RECORDED_RUNS` for the
property tests that replay prefixes of them.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestration.core import (
    CompleteOrchestration,
    ContinueAsNewAction,
    EventRaised,
    ExecutionResult,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    FailureDetails,
    HistoryEvent,
    OrchestrationExecutor,
    OrchestrationRuntimeStatus,
    OrchestrationSession,
    OrchestratorStarted,
    ParentInstance,
    ScheduleActivity,
    TaskCompleted,
    TaskFailed,
    TimerFired,
    serialization,
)
from orchestration.core.outbox import (
    DeliverEvent,
    FireTimer,
    Outgoing,
    RunActivity,
    Sender,
    StartChild,
    outgoing,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)

RECORDED_RUNS: list[tuple[dict[str, Callable[..., Any]], str, list[HistoryEvent]]] = []


@dataclass
class Instance:
    instance_id: str
    name: str
    history: list[HistoryEvent] = field(default_factory=list)
    inbox: list[HistoryEvent] = field(default_factory=list)
    session: OrchestrationSession | None = None
    status: OrchestrationRuntimeStatus = OrchestrationRuntimeStatus.Pending
    output: Any = None
    failure: FailureDetails | None = None
    custom_status: Any = None
    parent: ParentInstance | None = None
    generations: list[list[HistoryEvent]] = field(default_factory=list)
    results: list[ExecutionResult] = field(default_factory=list)


@dataclass(order=True)
class _Timer:
    fire_at: datetime
    seq: int
    instance_id: str = field(compare=False)
    timer_id: int = field(compare=False)


class Simulation:
    """Runs orchestrators and activities in memory, with a simulated clock."""

    def __init__(
        self,
        orchestrators: dict[str, Callable[..., Any]],
        activities: dict[str, Callable[[Any], Any]] | None = None,
        *,
        seed: int | None = None,
        max_timer_interval: timedelta | None = None,
        step_delay: timedelta = timedelta(milliseconds=10),
    ) -> None:
        self.orchestrators = orchestrators
        self.activities = activities or {}
        self.instances: dict[str, Instance] = {}
        self.now = T0
        self.random = random.Random(seed) if seed is not None else None
        self.max_timer_interval = max_timer_interval
        self.step_delay = step_delay
        self._executor = OrchestrationExecutor(orchestrators, max_timer_interval=max_timer_interval)
        self._activity_queue: list[tuple[str, ScheduleActivity]] = []
        self._timers: list[_Timer] = []
        self._timer_seq = 0
        self.activity_calls: list[tuple[str, Any]] = []
        self.steps = 0

    # -- client side ---------------------------------------------------------------------
    def start(
        self,
        name: str,
        input_: Any = None,
        instance_id: str = "instance-1",
        *,
        parent: ParentInstance | None = None,
        version: str | None = None,
    ) -> Instance:
        instance = Instance(instance_id, name, parent=parent)
        self.instances[instance_id] = instance
        instance.inbox.append(
            ExecutionStarted(
                -1,
                self.now,
                name=name,
                instance_id=instance_id,
                input=serialization.dumps(input_),
                version=version,
                parent=parent,
            )
        )
        return instance

    def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        self._deliver(instance_id, EventRaised(-1, self.now, name, serialization.dumps(data)))

    def suspend(self, instance_id: str, reason: str | None = None) -> None:
        self._deliver(instance_id, ExecutionSuspended(-1, self.now, reason))

    def resume(self, instance_id: str, reason: str | None = None) -> None:
        self._deliver(instance_id, ExecutionResumed(-1, self.now, reason))

    def terminate(self, instance_id: str, reason: str | None = None) -> None:
        self._deliver(instance_id, ExecutionTerminated(-1, self.now, reason))

    def advance_clock(self, delta: timedelta) -> None:
        self.now += delta

    # -- the engine loop -----------------------------------------------------------------
    def run(self, *, max_steps: int = 100_000, fire_timers: bool = True) -> None:
        """Process until nothing is left to do (timers fire by moving the clock forward)."""
        if not self.pump(max_steps, fire_timers=fire_timers):
            raise AssertionError("simulation did not settle")

    def pump(self, units: int, *, fire_timers: bool = True) -> bool:
        """Do at most `units` pieces of work; True when nothing is left to do."""
        for _ in range(units):
            if self._run_one_step():
                continue
            if self._activity_queue:
                self._run_activity()
                continue
            if fire_timers and self._fire_next_timer():
                continue
            return True
        return False

    def _run_one_step(self) -> bool:
        ready = [i for i in self.instances.values() if i.inbox]
        if not ready:
            return False
        instance = self.random.choice(ready) if self.random else ready[0]
        self.step(instance)
        return True

    def step(self, instance: Instance) -> ExecutionResult:
        self.now += self.step_delay
        new_events: list[HistoryEvent] = [OrchestratorStarted(-1, self.now), *instance.inbox]
        instance.inbox = []
        if instance.session is None:
            instance.session = OrchestrationSession(
                self.orchestrators,
                instance.instance_id,
                max_timer_interval=self.max_timer_interval,
            )
        replayed = self._executor.execute(instance.instance_id, instance.history, new_events)
        live = instance.session.step(new_events)
        assert live == replayed, (
            f"live session and full replay disagree at step {len(instance.results)} of "
            f"{instance.instance_id}:\nlive={live}\nreplay={replayed}"
        )
        self.steps += 1
        instance.results.append(live)
        instance.history.extend(live.new_events)
        instance.status = live.status
        instance.custom_status = serialization.loads(live.custom_status)
        # What the step sends, mapped as the production worker maps it (core.outbox).
        sender = Sender(instance.instance_id, instance.name, None, instance.parent)
        for item in outgoing(sender, live.actions, self.now):
            self._carry_out(instance, item)
        for action in live.actions:
            if isinstance(action, CompleteOrchestration):
                self._finish(instance, action)
            elif isinstance(action, ContinueAsNewAction):
                self._continue_as_new(instance, action)
        return live

    def _carry_out(self, instance: Instance, item: Outgoing) -> None:
        if isinstance(item, RunActivity):
            action = ScheduleActivity(item.task_id, item.name, item.input)
            self._activity_queue.append((instance.instance_id, action))
        elif isinstance(item, FireTimer):
            self._timer_seq += 1
            self._timers.append(
                _Timer(item.fire_at, self._timer_seq, instance.instance_id, item.event.timer_id)
            )
        elif isinstance(item, StartChild):
            self.start(
                item.name, serialization.loads(item.input), item.instance_id, parent=item.parent
            )
        elif isinstance(item, DeliverEvent):
            self._deliver(item.instance_id, item.event)

    def _finish(self, instance: Instance, action: CompleteOrchestration) -> None:
        instance.output = serialization.decode(action.result)
        instance.failure = action.failure
        instance.generations.append(instance.history)
        RECORDED_RUNS.append((self.orchestrators, instance.instance_id, list(instance.history)))

    def _continue_as_new(self, instance: Instance, action: ContinueAsNewAction) -> None:
        instance.generations.append(instance.history)
        RECORDED_RUNS.append((self.orchestrators, instance.instance_id, list(instance.history)))
        instance.history = []
        instance.session = None
        instance.inbox = [
            ExecutionStarted(
                -1,
                self.now,
                name=instance.name,
                instance_id=instance.instance_id,
                input=action.input,
                version=action.version,
                parent=instance.parent,
                execution_id=f"gen{len(instance.generations)}",
            ),
            *action.carryover_events,
            *instance.inbox,
        ]

    def _deliver(self, instance_id: str, event: HistoryEvent) -> None:
        self.instances[instance_id].inbox.append(event)

    def _run_activity(self) -> None:
        index = self.random.randrange(len(self._activity_queue)) if self.random else 0
        instance_id, action = self._activity_queue.pop(index)
        function = self.activities[action.name]
        argument = serialization.decode(action.input)  # as ActivityWorker.execute
        self.activity_calls.append((action.name, argument))
        try:
            result = serialization.dumps(function(argument))  # as ActivityWorker.execute
        except Exception as error:
            failure = FailureDetails(
                type(error).__name__, str(error), "".join(traceback.format_exception(error))
            )
            self._deliver(instance_id, TaskFailed(-1, self.now, action.id, failure))
            return
        self._deliver(instance_id, TaskCompleted(-1, self.now, action.id, result))

    def _fire_next_timer(self) -> bool:
        if not self._timers:
            return False
        self._timers.sort()
        timer = self._timers.pop(0)
        self.now = max(self.now, timer.fire_at)
        self._deliver(timer.instance_id, TimerFired(-1, self.now, timer.timer_id, timer.fire_at))
        return True

    @property
    def pending_timers(self) -> list[datetime]:
        return sorted(t.fire_at for t in self._timers)


def run(
    orchestrator: Callable[..., Any],
    input_: Any = None,
    activities: dict[str, Callable[[Any], Any]] | None = None,
    **kwargs: Any,
) -> tuple[Simulation, Instance]:
    """Run one orchestrator (registered as 'main') to the end."""
    sim = Simulation({"main": orchestrator}, activities, **kwargs)
    instance = sim.start("main", input_)
    sim.run()
    return sim, instance
