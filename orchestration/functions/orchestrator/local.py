"""Work this process does itself, without a queue hop: small batches of activities, and
timers due soon.

Local activities run only behind a held queue message (or a local start's guarded state
row): if the process dies, the message comes back and they run again (activities run at
least once). Before a commit, a step's local activities and the steps their results lead to
are folded into one commit (group commit). Near timers fire from this process to a fraction
of a millisecond; the commit that scheduled one guards it with the state row's wake-up time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from orchestration.core.actions import Action, ScheduleActivity
from orchestration.core.executor import ExecutionResult, OrchestrationSession
from orchestration.core.history import HistoryEvent, OrchestratorStarted
from orchestration.core.outbox import RunActivity
from orchestration.functions.orchestrator import plan
from orchestration.functions.orchestrator.inbox import Arrival
from orchestration.functions.orchestrator.options import WorkerOptions
from orchestration.functions.orchestrator.sending import activity_messages
from orchestration.functions.orchestrator.stats import WorkerStats
from orchestration.functions.precise_timers import call_later_precisely
from orchestration.functions.registry import Registry
from orchestration.functions.step_runner import StepRunner
from orchestration.storage.hub import InstanceState, TaskHub
from orchestration.storage.mailbox import Mailbox
from orchestration.storage.messages import ActivityMessage, ControlMessage

log = logging.getLogger("orchestration.orchestrator")

LocalRunner = Callable[[ActivityMessage], Awaitable[HistoryEvent]]


@dataclass(slots=True)
class LocalWork:
    """Activities a committed step leaves to this process; some may already be running."""

    messages: list[ActivityMessage] = field(default_factory=list)
    running: dict[int, asyncio.Future[HistoryEvent]] = field(default_factory=dict)
    sends: list[asyncio.Future[None]] = field(default_factory=list)  # the step's messages


def runs_of(actions: list[ScheduleActivity]) -> list[RunActivity]:
    return [RunActivity(a.id, a.name, a.input, a.attempt) for a in actions]


class LocalActivities:
    """Runs a step's activities in this process when they may, and folds their steps."""

    def __init__(
        self,
        registry: Registry,
        options: WorkerOptions,
        stats: WorkerStats,
        steps: StepRunner,
        clock: Callable[[], datetime],
    ) -> None:
        self.registry = registry
        self.options = options
        self.stats = stats
        self.steps = steps
        self.clock = clock
        # Set by the wiring to run activities in this process (no queue hop); None sends
        # every activity through the work-item queue.
        self.runner: LocalRunner | None = None
        self._proven: set[str] = set()  # activities that have run here and come back

    def staying(
        self, actions: tuple[Action, ...] | list[Action], *, timer_open: bool
    ) -> list[ScheduleActivity]:
        """The activities among `actions` this process would run itself (all or none)."""
        return plan.staying_local(
            actions,
            timer_open=timer_open,
            can_run_here=self.runner is not None,
            batch_limit=self.options.local_batch,
            registered=self.registry.activities,
        )

    def of_step(
        self, state: InstanceState, session: OrchestrationSession, result: ExecutionResult
    ) -> list[ActivityMessage] | None:
        """The step's activities, if they are all it asks for and may run in this process."""
        if result.is_done or not all(isinstance(a, ScheduleActivity) for a in result.actions):
            return None
        timer_open = session.earliest_open_timer() is not None
        staying = self.staying(result.actions, timer_open=timer_open)
        return activity_messages(state, runs_of(staying)) if staying else None

    async def run(self, message: ActivityMessage) -> HistoryEvent:
        """Run an activity in this process; note that it came back (did not kill us)."""
        assert self.runner is not None
        outcome = await self.runner(message)
        self._proven.add(message.name)
        return outcome

    async def fold(
        self,
        state: InstanceState,
        session: OrchestrationSession,
        result: ExecutionResult,
        history: list[HistoryEvent],
        work: LocalWork,
        creating: bool = False,
    ) -> ExecutionResult:
        """Run a step's local activities before committing, and the steps their results
        lead to, so that one commit records several steps (group commit).

        Safe because a held queue message stands behind the step: if this process dies
        before the commit, the message comes back and the steps run again (activities run
        at least once, as always). Bounded by `local_group_steps` and `local_group_seconds`:
        activities still running then are committed as scheduled and left in `work.running`,
        to be awaited after the commit.

        A local start (`creating`) has no message behind it and nothing in storage yet: it
        folds only activities that have already run in this process and come back, within
        `local_start_seconds`. An activity that has not (one that kills its process, say)
        runs after the creating commit, so that the instance exists to fail readably.
        """
        options = self.options
        loop = asyncio.get_running_loop()
        budget = options.local_start_seconds if creating else options.local_group_seconds
        deadline = loop.time() + budget
        for _round in range(options.local_group_steps):
            messages = self.of_step(state, session, result)
            if self.runner is None or messages is None or loop.time() > deadline:
                break
            if creating and any(m.name not in self._proven for m in messages):
                break
            self.stats.local_activities += len(messages)
            tasks = [asyncio.ensure_future(self.run(m)) for m in messages]
            _done, pending = await asyncio.wait(tasks, timeout=max(deadline - loop.time(), 0))
            if pending:
                work.running.update((m.task_id, t) for m, t in zip(messages, tasks, strict=True))
                break
            self.stats.folded_steps += 1
            outcomes = [t.result() for t in tasks]
            folded = [OrchestratorStarted(-1, self.clock()), *outcomes]
            result = await self.steps.run(
                state.instance_id, session, functools.partial(session.step, folded)
            )
            self.stats.steps += 1
            history.extend(result.new_events)
        return result


class LocalTimers:
    """Fires near timers from this process."""

    def __init__(
        self,
        hub: TaskHub,
        mailbox: Mailbox,
        stats: WorkerStats,
        clock: Callable[[], datetime],
        deliver: Callable[[Arrival], None],
        spawn: Callable[..., None],
    ) -> None:
        self.hub = hub
        self.mailbox = mailbox
        self.stats = stats
        self.clock = clock
        self._deliver = deliver
        self._spawn = spawn

    def fire_locally(self, message: ControlMessage, fire_at: datetime) -> None:
        """Fire a near timer from this process, on time to a fraction of a millisecond.

        No queue message stands behind it: the commit that scheduled it set the state row's
        `wake_at` to `local_guard` after it is due, so if this process dies the sweeper wakes
        the instance and its worker schedules the timer again. (Queue visibility counts
        whole seconds and a poll adds its interval; a queued copy would also cost a send and
        a delete per timer.) The delay is taken from the clock now, not from the step's
        start: the commit and the sends before this point would otherwise make every timer
        late by their duration.
        """
        delay = (fire_at - self.clock()).total_seconds()
        when = call_later_precisely(delay, self._fire, message)
        self.mailbox.timer_windows.expect(when, asyncio.get_running_loop().time())

    def _fire(self, message: ControlMessage) -> None:
        """The timer is due: deliver its event at once (no task hop before the step)."""
        self.stats.local_timers += 1
        arrival = Arrival(message, 1, asyncio.get_running_loop().create_future(), durable=False)
        self._deliver(arrival)
        self._spawn(self._after_fire(message, arrival.done))

    async def _after_fire(self, message: ControlMessage, done: asyncio.Future[None]) -> None:
        try:
            await done
        except Exception:
            # Its step may have failed, or committed with its messages unsent: ask for a
            # repair now rather than at the row's wake-up time.
            log.warning(
                "local timer step failed; waking the instance for a repair",
                extra={"instance_id": message.instance_id, "event": "local_timer_failed"},
            )
            with contextlib.suppress(Exception):  # if this fails too, the sweep repairs
                await self.hub.send_control(ControlMessage(message.instance_id, None, None))
