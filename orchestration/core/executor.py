"""The executor's two entry points: a full replay, and a live session that skips it.

`OrchestrationExecutor.execute(instance_id, old_events, new_events)` replays the old events
and applies the new ones, from scratch, every time. `OrchestrationSession` keeps the
instance's generator suspended between steps (Durable Functions' "extended sessions"): each
`step(new_events)` costs only the new events, whatever the length of the history. Both run
the same `OrchestrationRuntime`, so they give identical results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestration.core.actions import Action
from orchestration.core.history import FailureDetails, HistoryEvent
from orchestration.core.runtime import (
    DroppedEvent,
    OrchestrationRuntime,
    OrchestratorFunction,
    OrchestratorResolver,
)
from orchestration.core.status import OrchestrationRuntimeStatus


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """What one orchestrator step decided.

    `new_events` is the history to append (the new events as applied, then the events that
    record the step's actions); `actions` are what the engine must carry out. `dropped_events`
    are new events that were not applied: duplicates, or events for a finished instance.
    """

    new_events: tuple[HistoryEvent, ...]
    actions: tuple[Action, ...]
    status: OrchestrationRuntimeStatus
    custom_status: str | None
    output: str | None
    failure: FailureDetails | None
    dropped_events: tuple[DroppedEvent, ...] = ()

    @property
    def is_done(self) -> bool:
        return self.status.is_terminal or self.status is OrchestrationRuntimeStatus.ContinuedAsNew


def _resolver(
    orchestrators: OrchestratorResolver | Mapping[str, OrchestratorFunction],
) -> OrchestratorResolver:
    if isinstance(orchestrators, Mapping):
        return orchestrators.get
    return orchestrators


def _result(
    runtime: OrchestrationRuntime, recorded: list[HistoryEvent], actions: list[Action]
) -> ExecutionResult:
    completion = runtime.completion
    output = getattr(completion, "result", None) if completion is not None else None
    failure = getattr(completion, "failure", None) if completion is not None else None
    return ExecutionResult(
        new_events=tuple(recorded),
        actions=tuple(actions),
        status=runtime.status,
        custom_status=runtime.custom_status,
        output=output,
        failure=failure,
        dropped_events=tuple(runtime.dropped_events),
    )


class OrchestrationSession:
    """One instance's orchestrator, kept alive between steps.

    Start it with the instance's stored history (`replay`), or empty for a new instance; then
    call `step` with each batch of new events. The caller must discard the session whenever the
    stored history may have changed behind its back (the storage layer checks the state row's
    ETag).
    """

    def __init__(
        self,
        orchestrators: OrchestratorResolver | Mapping[str, OrchestratorFunction],
        instance_id: str,
        *,
        max_timer_interval: timedelta | None = None,
        default_version: str | None = None,
    ) -> None:
        """`default_version`: the version of sub-orchestrations started without one."""
        self._runtime = OrchestrationRuntime(
            instance_id, _resolver(orchestrators), max_timer_interval, default_version
        )

    @property
    def instance_id(self) -> str:
        return self._runtime.instance_id

    @property
    def status(self) -> OrchestrationRuntimeStatus:
        return self._runtime.status

    @property
    def execution_id(self) -> str | None:
        return self._runtime.execution_id

    @property
    def name(self) -> str:
        """The orchestrator's name ("" until its ExecutionStarted is applied)."""
        return self._runtime.name

    @property
    def progress(self) -> int:
        """A count that grows while the orchestrator's code runs normally: each resume of
        its generator and each durable API call adds to it (see `StepRunner`)."""
        return self._runtime.progress

    def open_actions(self) -> list[Action]:
        """Activities, timers and sub-orchestrations scheduled and not yet answered."""
        return self._runtime.open_actions()

    def earliest_open_timer(self) -> datetime | None:
        """When the first timer scheduled and not yet fired is due (None: no such timer)."""
        return self._runtime.earliest_open_timer()

    def entity_requests_to_resend(self) -> list[Action]:
        """Entity requests a repair sends again (see OrchestrationRuntime)."""
        return self._runtime.entity_requests_to_resend()

    def replay(self, old_events: Sequence[HistoryEvent]) -> OrchestrationSession:
        """Rebuild the orchestrator's state from history already committed."""
        self._runtime.replay(old_events)
        return self

    def expect_history(self, events: Sequence[HistoryEvent]) -> None:
        """Every step this session will take replays one of `events`' episodes (the
        Replayer's check): `is_patched` then answers from their markers, as a replay does."""
        self._runtime.patches.expect(events, 0)
        self._runtime.patches.history_decides = True

    def step(self, new_events: Sequence[HistoryEvent]) -> ExecutionResult:
        """Apply new events; the result's `new_events` must be committed before the next step."""
        recorded, actions = self._runtime.advance(new_events)
        return _result(self._runtime, recorded, actions)


class OrchestrationExecutor:
    """Runs orchestrator steps by full replay, as DurableTask's executor does."""

    def __init__(
        self,
        orchestrators: OrchestratorResolver | Mapping[str, OrchestratorFunction],
        *,
        max_timer_interval: timedelta | None = None,
    ) -> None:
        self._orchestrators = orchestrators
        self._max_timer_interval = max_timer_interval

    def execute(
        self,
        instance_id: str,
        old_events: Sequence[HistoryEvent],
        new_events: Sequence[HistoryEvent],
    ) -> ExecutionResult:
        """Replay `old_events`, apply `new_events`, and say what the step decided."""
        session = OrchestrationSession(
            self._orchestrators, instance_id, max_timer_interval=self._max_timer_interval
        )
        return session.replay(old_events).step(new_events)


def execute(
    orchestrator: OrchestratorFunction,
    instance_id: str,
    old_events: Sequence[HistoryEvent],
    new_events: Sequence[HistoryEvent],
    *,
    max_timer_interval: timedelta | None = None,
) -> ExecutionResult:
    """Run one step of `orchestrator` by full replay (whatever name history gives it)."""
    executor = OrchestrationExecutor(
        lambda _name: orchestrator, max_timer_interval=max_timer_interval
    )
    return executor.execute(instance_id, old_events, new_events)
