"""Replay stored histories against current code: a determinism check for users' CI."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from orchestration.core.errors import NonDeterminismError
from orchestration.core.executor import OrchestrationSession
from orchestration.core.history import (
    ContinueAsNew,
    ExecutionCompleted,
    HistoryEvent,
    OrchestratorStarted,
    event_from_dict,
)
from orchestration.core.runtime import OrchestratorFunction


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """The outcome of replaying one stored history against the current code."""

    instance_id: str
    is_deterministic: bool
    error: str | None = None


class Replayer:
    """Replays recorded histories with the app's current orchestrators.

    >>> Replayer({"order": order_orchestrator}).replay("id-1", history).is_deterministic
    """

    def __init__(
        self,
        orchestrators: Mapping[str, OrchestratorFunction],
        *,
        max_timer_interval: timedelta | None = None,
    ) -> None:
        """`max_timer_interval` must be the engine's, for histories with chained long timers."""
        self._orchestrators = orchestrators
        self._max_timer_interval = max_timer_interval

    def replay(
        self, instance_id: str, history: Sequence[HistoryEvent | dict[str, Any]]
    ) -> ReplayReport:
        """Replay `history` episode by episode, as the engine recorded it."""
        events = [e if isinstance(e, HistoryEvent) else event_from_dict(e) for e in history]
        session = OrchestrationSession(
            self._orchestrators, instance_id, max_timer_interval=self._max_timer_interval
        )
        session.expect_history(events)
        for episode in _episodes(events):
            result = session.step(episode.new_events)
            failure = result.failure
            if failure is not None and failure.error_type == NonDeterminismError.__name__:
                return ReplayReport(instance_id, False, failure.message)
            recorded = list(result.new_events)
            expected = list(episode.new_events) + list(episode.scheduled)
            mismatch = _first_mismatch(expected, recorded)
            if mismatch is not None:
                return ReplayReport(instance_id, False, mismatch)
        return ReplayReport(instance_id, True)

    def check(
        self, instance_id: str, history: Sequence[HistoryEvent | dict[str, Any]]
    ) -> ReplayReport:
        """Replay `history` in one pass, as a worker does when it loads the instance (after a
        deploy, say): the report fails exactly where that worker would fail the instance (a
        NonDeterminismError, or the code raising or missing). Stricter `replay` also fails
        code that would only schedule more than history holds in some step."""
        events = [e if isinstance(e, HistoryEvent) else event_from_dict(e) for e in history]
        session = OrchestrationSession(
            self._orchestrators, instance_id, max_timer_interval=self._max_timer_interval
        )
        result = session.replay(events).step([])
        for event in result.new_events:
            if isinstance(event, ExecutionCompleted) and event.failure is not None:
                failure = event.failure
                deterministic = failure.error_type != NonDeterminismError.__name__
                return ReplayReport(instance_id, deterministic, failure.describe())
        return ReplayReport(instance_id, True)

    def replay_all(
        self, histories: Iterable[tuple[str, Sequence[HistoryEvent | dict[str, Any]]]]
    ) -> list[ReplayReport]:
        return [self.replay(instance_id, history) for instance_id, history in histories]


@dataclass(slots=True)
class _Episode:
    new_events: list[HistoryEvent]
    scheduled: list[HistoryEvent]


_PRODUCED = ("TaskScheduled", "TimerCreated", "SubOrchestrationInstanceCreated", "EventSent")


def _episodes(events: list[HistoryEvent]) -> list[_Episode]:
    """Split a history into steps at each OrchestratorStarted: what arrived, what it produced."""
    episodes: list[_Episode] = []
    for event in events:
        if not episodes or isinstance(event, OrchestratorStarted):
            episodes.append(_Episode([], []))
        produced = event.event_type.value in _PRODUCED or isinstance(
            event, (ExecutionCompleted, ContinueAsNew)
        )
        (episodes[-1].scheduled if produced else episodes[-1].new_events).append(event)
    return episodes


def _first_mismatch(expected: list[HistoryEvent], actual: list[HistoryEvent]) -> str | None:
    for index, (want, got) in enumerate(zip(expected, actual, strict=False)):
        if type(want) is not type(got) or _key(want) != _key(got):
            return (
                f"event {index} of the step: history has {type(want).__name__} {_key(want)}, "
                f"the code now produces {type(got).__name__} {_key(got)}"
            )
    if len(expected) != len(actual):
        return (
            f"the step recorded {len(expected)} events, the code now produces {len(actual)}: "
            f"{[type(e).__name__ for e in actual[len(expected) - 1 :]]}"
        )
    return None


def _key(event: HistoryEvent) -> tuple[Any, ...]:
    return (event.event_id, getattr(event, "name", None), getattr(event, "status", None))
