"""The replay runtime: one orchestration instance's generator, driven by history events.

`OrchestrationRuntime` applies events one at a time. Replaying old events rebuilds the state a
previous step left; applying new events advances the orchestrator and records what it did. The
executor (full replay) and the live session (no replay) are both thin layers over it, which is
why they give identical results.
"""

from __future__ import annotations

import traceback
from collections import deque
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestration.core import serialization
from orchestration.core.actions import (
    Action,
    CompleteOrchestration,
    ContinueAsNewAction,
    CreateTimer,
    ScheduleActivity,
    SendEvent,
    StartSubOrchestration,
)
from orchestration.core.context import DurableOrchestrationContext
from orchestration.core.entities import response_event
from orchestration.core.entity_requests import EntityRequests
from orchestration.core.errors import (
    CODE_RETURNED,
    CODE_SCHEDULED_NOTHING,
    CODE_STILL_WAITING,
    NonDeterminismError,
    OrchestratorNotRegisteredError,
    OrchestratorUsageError,
    TaskFailedError,
    non_determinism_message,
)
from orchestration.core.function_refs import INPUT_TYPE
from orchestration.core.history import (
    SCHEDULING_EVENTS,
    ContinueAsNew,
    EventRaised,
    EventSent,
    ExecutionCompleted,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    FailureDetails,
    HistoryEvent,
    HistoryRecord,
    OrchestratorStarted,
    ParentInstance,
    PatchApplied,
    SubOrchestrationInstanceCompleted,
    SubOrchestrationInstanceCreated,
    SubOrchestrationInstanceFailed,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
)
from orchestration.core.patches import PatchBook
from orchestration.core.recording import (
    completion_event,
    describe_event,
    scheduling_event,
    signature_of_action,
    signature_of_event,
)
from orchestration.core.retry import RetryOptions
from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.core.tasks import (
    AtomicTask,
    EntityCallTask,
    RetryableTask,
    TaskBase,
    TaskState,
    TimerTask,
)

OrchestratorFunction = Callable[[DurableOrchestrationContext], Any]
OrchestratorResolver = Callable[[str], OrchestratorFunction | None]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_Completion = CompleteOrchestration | ContinueAsNewAction
_NO_FOLLOW_UP = frozenset(
    {OrchestrationRuntimeStatus.Failed, OrchestrationRuntimeStatus.Terminated}
)


@dataclass(frozen=True, slots=True)
class DroppedEvent:
    """A new event the step did not record, and why (a duplicate, or not meant for us)."""

    event: HistoryEvent
    reason: str


def _failure_from_exception(error: BaseException) -> FailureDetails:
    inner = error.failure if isinstance(error, TaskFailedError) else None
    return FailureDetails(
        error_type=type(error).__name__,
        message=str(error),
        stack_trace="".join(traceback.format_exception(error)),
        inner=inner,
    )


class OrchestrationRuntime:
    """Replays and advances one orchestration instance. Pure: no I/O, no clock."""

    def __init__(
        self,
        instance_id: str,
        resolve: OrchestratorResolver,
        max_timer_interval: timedelta | None = None,
        default_version: str | None = None,
    ) -> None:
        """`default_version`: the version of sub-orchestrations started without one."""
        self.instance_id = instance_id
        self._resolve = resolve
        self._max_timer_interval = max_timer_interval
        self.default_version = default_version
        self.patches = PatchBook()
        self.context = DurableOrchestrationContext(self)

        self.name = ""
        self.input: str | None = None
        self.input_type: type | None = None  # the trigger's `input_type=`, for get_input
        self.history: list[HistoryRecord] = []  # what `context.histories` shows
        self.played = 0  # how many of them earlier steps applied
        self.version: str | None = None
        self.parent: ParentInstance | None = None
        self.execution_id: str | None = None
        self.current_time = _EPOCH
        self.is_replaying = False
        self.custom_status: str | None = None
        self.continue_as_new_requested = False
        self._continue_as_new_input: str | None = None
        self._preserve_unprocessed_events = False

        self._sequence = 0
        # Grows whenever the orchestrator's code is resumed or calls the durable API: a step
        # whose count stands still while it runs is blocked in the user's code.
        self.progress = 0
        self._episode = 0
        self._unmatched_actions: dict[int, Action] = {}
        self._open_actions: dict[int, Action] = {}
        self._open_tasks: dict[int, AtomicTask] = {}
        self._event_waiters: dict[str, deque[AtomicTask]] = {}
        self._buffered_events: dict[str, deque[tuple[int, EventRaised]]] = {}
        self._arrivals = 0
        self._entity_requests = EntityRequests(instance_id)
        self._suspended = False
        self._suspended_events: list[HistoryEvent] = []
        self._generator: Generator[Any, Any, Any] | None = None
        self._waiting_on: TaskBase | None = None
        self.completion: _Completion | None = None
        self.started = False
        self._completion_flushed = False

        self._recording: list[HistoryEvent] | None = None
        self._dropped: list[DroppedEvent] = []
        self._handlers: dict[type[HistoryEvent], Callable[[Any], bool]] = {
            OrchestratorStarted: self._on_orchestrator_started,
            ExecutionStarted: self._on_execution_started,
            TaskScheduled: self._on_scheduling_event,
            TimerCreated: self._on_scheduling_event,
            SubOrchestrationInstanceCreated: self._on_scheduling_event,
            EventSent: self._on_scheduling_event,
            PatchApplied: self._on_patch_applied,
            TaskCompleted: self._on_task_completed,
            SubOrchestrationInstanceCompleted: self._on_task_completed,
            TaskFailed: self._on_task_failed,
            SubOrchestrationInstanceFailed: self._on_task_failed,
            TimerFired: self._on_timer_fired,
            EventRaised: self._on_event_raised,
            ExecutionSuspended: self._on_suspended,
            ExecutionResumed: self._on_resumed,
            ExecutionTerminated: self._on_terminated,
            ExecutionCompleted: self._on_execution_completed,
            ContinueAsNew: self._on_execution_completed,
        }

    # -- status ------------------------------------------------------------------------
    @property
    def is_done(self) -> bool:
        return self.completion is not None

    @property
    def status(self) -> OrchestrationRuntimeStatus:
        if self.completion is not None:
            if isinstance(self.completion, ContinueAsNewAction):
                return OrchestrationRuntimeStatus.ContinuedAsNew
            return self.completion.status
        if self._suspended:
            return OrchestrationRuntimeStatus.Suspended
        if not self.started:
            return OrchestrationRuntimeStatus.Pending
        return OrchestrationRuntimeStatus.Running

    # -- applying events ---------------------------------------------------------------
    def replay(self, events: Iterable[HistoryEvent]) -> None:
        """Re-apply events already in history, rebuilding the state they left."""
        self.is_replaying = True
        self._recording = None
        events = list(events)
        self.patches.expect(events, self._episode)
        for event in events:
            self._apply(event)

    def advance(self, events: Iterable[HistoryEvent]) -> tuple[list[HistoryEvent], list[Action]]:
        """Apply new events; return the history to append and the actions to carry out."""
        self.is_replaying = False
        self.played = len(self.history)
        recorded: list[HistoryEvent] = []
        self._recording = recorded
        self._dropped = []
        for event in events:
            self._apply(event)
        actions = self._flush_new_actions(recorded)
        self._recording = None
        return recorded, actions

    def open_actions(self) -> list[Action]:
        """Scheduled work not yet answered: what a repair re-sends."""
        if self.completion is not None:
            return []
        return [self._open_actions[key] for key in sorted(self._open_actions)]

    def earliest_open_timer(self) -> datetime | None:
        """When the first timer scheduled and not yet fired is due (None: no such timer)."""
        if self.completion is not None:
            return None
        due = [a.fire_at for a in self._open_actions.values() if isinstance(a, CreateTimer)]
        return min(due, default=None)

    @property
    def dropped_events(self) -> list[DroppedEvent]:
        return self._dropped

    def _apply(self, event: HistoryEvent) -> None:
        # Payload-free, so a long history does not hold its payloads in a warm session.
        self.history.append(HistoryRecord.of(event))
        if (
            self.completion is not None
            and not self._completion_flushed
            and isinstance(event, SCHEDULING_EVENTS)
        ):
            # The code finished sooner than the history it replays.
            self.completion = None
            self._fail(
                NonDeterminismError(
                    non_determinism_message(
                        self.name,
                        self._episode,
                        event.event_id,
                        describe_event(event),
                        CODE_RETURNED,
                    )
                )
            )
            return
        if self.completion is not None and not isinstance(
            event, (ExecutionCompleted, ContinueAsNew, OrchestratorStarted)
        ):
            self._drop(event, "the orchestration has already completed")
            return
        if self._suspended and not isinstance(
            event, (ExecutionSuspended, ExecutionResumed, ExecutionTerminated, OrchestratorStarted)
        ):
            self._record(event)
            self._suspended_events.append(event)
            return
        handler = self._handlers.get(type(event))
        if handler is None:
            self._drop(event, f"no handler for {type(event).__name__}")
            return
        try:
            keep = handler(event)
        except NonDeterminismError as error:
            self._record(event)
            self._fail(error)
            return
        if keep:
            self._record(event)
        if self._waiting_on is not None and self._waiting_on.state is not TaskState.RUNNING:
            self._resume()

    def _record(self, event: HistoryEvent) -> None:
        if self._recording is not None:
            self._recording.append(event)

    def _drop(self, event: HistoryEvent, reason: str) -> None:
        if self._recording is not None:
            self._dropped.append(DroppedEvent(event, reason))

    # -- event handlers (return True to record the event) ------------------------------
    def _on_orchestrator_started(self, event: OrchestratorStarted) -> bool:
        self.current_time = event.timestamp
        self._episode += 1
        return True

    def _on_execution_started(self, event: ExecutionStarted) -> bool:
        if self.started:
            self._drop(event, "the orchestration has already started")
            return False
        self.started = True
        self.name = event.name
        self.input = event.input
        self.version = event.version
        self.parent = event.parent
        self.execution_id = event.execution_id
        if self.current_time == _EPOCH:
            self.current_time = event.timestamp
        function = self._resolve(event.name)
        self.input_type = getattr(function, INPUT_TYPE, None)
        if function is None:
            self._fail(
                OrchestratorNotRegisteredError(
                    f"No orchestrator named {event.name!r} is registered in this app."
                )
            )
            return True
        self.progress += 1
        try:
            produced = function(self.context)
        except Exception as error:
            self._fail(error)
            return True
        if isinstance(produced, Generator):
            self._generator = produced
            self._step_generator(None, None)
        else:
            self._complete(produced)
        return True

    def _on_scheduling_event(self, event: HistoryEvent) -> bool:
        action = self._unmatched_actions.pop(event.event_id, None)
        if action is not None and signature_of_action(action) == signature_of_event(event):
            if not isinstance(action, SendEvent):
                self._open_actions[event.event_id] = action
            return True
        expected = describe_event(event)
        if action is None:
            raise NonDeterminismError(
                non_determinism_message(
                    self.name, self._episode, event.event_id, expected, CODE_SCHEDULED_NOTHING
                )
            )
        raise NonDeterminismError(
            non_determinism_message(
                self.name, self._episode, event.event_id, expected, action.describe()
            )
        )

    def _on_patch_applied(self, event: PatchApplied) -> bool:
        self.patches.applied(event.name, self._episode)
        return True

    def _on_task_completed(self, event: TaskCompleted | SubOrchestrationInstanceCompleted) -> bool:
        task = self._open_tasks.pop(event.task_scheduled_id, None)
        if task is None:
            self._drop(event, self._unknown_task_reason(event.task_scheduled_id))
            return False
        self._open_actions.pop(event.task_scheduled_id, None)
        task._succeed_with_payload(event.result)
        return True

    def _on_task_failed(self, event: TaskFailed | SubOrchestrationInstanceFailed) -> bool:
        task = self._open_tasks.pop(event.task_scheduled_id, None)
        if task is None:
            self._drop(event, self._unknown_task_reason(event.task_scheduled_id))
            return False
        self._open_actions.pop(event.task_scheduled_id, None)
        message = f"{task.description} failed: {event.failure.describe()}"
        task._fail(TaskFailedError(message, event.failure))
        return True

    def _unknown_task_reason(self, task_id: int) -> str:
        if task_id < self._sequence and task_id not in self._unmatched_actions:
            return f"task {task_id} has already completed (duplicate delivery)"
        return f"no task {task_id} was scheduled by this orchestration"

    def _on_timer_fired(self, event: TimerFired) -> bool:
        task = self._open_tasks.pop(event.timer_id, None)
        if task is None or not isinstance(task, TimerTask):
            self._drop(event, self._unknown_task_reason(event.timer_id))
            return False
        self._open_actions.pop(event.timer_id, None)
        if task.is_cancelled:
            return True
        if self._max_timer_interval is not None and event.fire_at < task.fire_at:
            self._schedule_timer_leg(task, max(self.current_time, event.fire_at))
            return True
        task._succeed(None)
        return True

    def _on_event_raised(self, event: EventRaised) -> bool:
        key = event.name.casefold()
        waiters = self._event_waiters.get(key)
        if waiters:
            waiters.popleft()._succeed_with_payload(event.input)
        else:
            self._arrivals += 1
            self._buffered_events.setdefault(key, deque()).append((self._arrivals, event))
        return True

    def _on_suspended(self, event: ExecutionSuspended) -> bool:
        # A state, not a counter: suspending a suspended instance changes nothing (and is
        # not recorded), so one resume resumes it.
        if self._suspended:
            return False
        self._suspended = True
        return True

    def _on_resumed(self, event: ExecutionResumed) -> bool:
        if not self._suspended:
            return False
        self._suspended = False
        self._record(event)
        buffered, self._suspended_events = self._suspended_events, []
        recording, self._recording = self._recording, None
        try:
            for pending in buffered:
                self._apply(pending)
        finally:
            self._recording = recording
        return False

    def _on_terminated(self, event: ExecutionTerminated) -> bool:
        self._record(event)
        self._set_completion(
            CompleteOrchestration(
                id=-1,
                status=OrchestrationRuntimeStatus.Terminated,
                result=serialization.dumps(event.reason),
            )
        )
        return False

    def _on_execution_completed(self, event: ExecutionCompleted | ContinueAsNew) -> bool:
        if self.completion is None:
            raise NonDeterminismError(
                non_determinism_message(
                    self.name, self._episode, None, "the orchestration ended", CODE_STILL_WAITING
                )
            )
        self._completion_flushed = True
        return True

    # -- scheduling, called through the context ----------------------------------------
    def _next_id(self) -> int:
        self.progress += 1
        action_id = self._sequence
        self._sequence += 1
        return action_id

    def schedule_activity(
        self, name: str, encoded_input: str | None, attempt: int = 1
    ) -> AtomicTask:
        action_id = self._next_id()
        self._unmatched_actions[action_id] = ScheduleActivity(
            action_id, name, encoded_input, attempt
        )
        task = AtomicTask(action_id, f"Activity {name!r}")
        self._open_tasks[action_id] = task
        return task

    def start_sub_orchestration(
        self,
        name: str,
        encoded_input: str | None,
        instance_id: str | None,
        version: str | None = None,
    ) -> AtomicTask:
        action_id = self._next_id()
        if instance_id is None:
            suffix = f"{self.execution_id}:{action_id}" if self.execution_id else str(action_id)
            instance_id = f"{self.instance_id}:{suffix}"
        self._unmatched_actions[action_id] = StartSubOrchestration(
            action_id, name, instance_id, encoded_input, version or self.default_version
        )
        task = AtomicTask(action_id, f"Sub-orchestration {name!r} (instance {instance_id!r})")
        self._open_tasks[action_id] = task
        return task

    def is_patched(self, name: str) -> bool:
        """See core/patches: decided once per execution, by history when it replays."""
        self.progress += 1
        return self.patches.decide(name, self._episode, self.is_replaying)

    def create_timer(self, fire_at: datetime) -> TimerTask:
        if fire_at.tzinfo is None:
            fire_at = fire_at.replace(tzinfo=UTC)
        action_id = self._next_id()
        task = TimerTask(action_id, fire_at)
        self._schedule_timer_leg(task, self.current_time, action_id)
        return task

    def _schedule_timer_leg(self, task: TimerTask, now: datetime, action_id: int = -1) -> None:
        if action_id < 0:
            action_id = self._next_id()
        leg_fire_at = task.fire_at
        if self._max_timer_interval is not None and task.fire_at - now > self._max_timer_interval:
            leg_fire_at = now + self._max_timer_interval
        task.action_id = action_id
        self._unmatched_actions[action_id] = CreateTimer(action_id, leg_fire_at)
        self._open_tasks[action_id] = task

    def wait_for_event(self, name: str, expected_type: Any = None) -> AtomicTask:
        self.progress += 1
        key = name.casefold()
        task = AtomicTask(-1, f"External event {name!r}", expected_type)
        buffered = self._buffered_events.get(key)
        if buffered:
            _, event = buffered.popleft()
            task._succeed_with_payload(event.input)
        else:
            self._event_waiters.setdefault(key, deque()).append(task)
        return task

    def send_event(self, instance_id: str, name: str, encoded_data: str | None) -> None:
        action_id = self._next_id()
        self._unmatched_actions[action_id] = SendEvent(action_id, instance_id, name, encoded_data)

    def send_to_entity(
        self, entity_instance: str, operation: str, encoded_input: str | None, call: bool
    ) -> EntityCallTask | None:
        """Send an operation request to an entity; for a call, the task of its answer."""
        action_id = self._next_id()
        requests = self._entity_requests
        self._unmatched_actions[action_id] = requests.send(
            action_id, self.execution_id, entity_instance, operation, encoded_input, call,
            self.current_time,
        )  # fmt: skip
        if not call:
            return None
        task = EntityCallTask(action_id, f"Entity operation {operation!r} on {entity_instance!r}")
        answer = response_event(requests.request_id(self.execution_id, action_id))
        self._event_waiters.setdefault(answer.casefold(), deque()).append(task)
        requests.awaits(action_id, task)
        return task

    def entity_requests_to_resend(self) -> list[Action]:
        """This execution's entity requests a repair sends again (EntityRequests.to_resend)."""
        return self._entity_requests.to_resend(self.current_time)

    def with_retry(self, options: RetryOptions, create_attempt: Callable[[], TaskBase]) -> TaskBase:
        return RetryableTask(options, create_attempt, self.create_timer, lambda: self.current_time)

    def request_continue_as_new(self, encoded_input: str | None, preserve: bool) -> None:
        self.continue_as_new_requested = True
        self._continue_as_new_input = encoded_input
        self._preserve_unprocessed_events = preserve

    # -- driving the generator ---------------------------------------------------------
    def _resume(self) -> None:
        while self._waiting_on is not None and self._waiting_on.state is not TaskState.RUNNING:
            task = self._waiting_on
            self._waiting_on = None
            if task.state is TaskState.FAILED:
                self._step_generator(None, task._exception)
            else:
                self._step_generator(task._value, None)

    def _step_generator(self, value: Any, error: BaseException | None) -> None:
        generator = self._generator
        if generator is None:
            return
        self.progress += 1
        try:
            yielded = generator.send(value) if error is None else generator.throw(error)
        except StopIteration as stop:
            self._complete(stop.value)
            return
        except Exception as failure:
            self._fail(failure)
            return
        if not isinstance(yielded, TaskBase):
            generator.close()
            self._fail(
                OrchestratorUsageError(
                    f"Orchestrator {self.name!r} yielded {type(yielded).__name__}; an "
                    f"orchestrator may only yield durable tasks (call_activity, create_timer, "
                    f"task_all, ...)."
                )
            )
            return
        self._waiting_on = yielded
        if yielded.state is not TaskState.RUNNING:
            self._resume()

    def _complete(self, output: Any) -> None:
        if self.continue_as_new_requested:
            carryover: tuple[HistoryEvent, ...] = ()
            if self._preserve_unprocessed_events:
                waiting = [item for queue in self._buffered_events.values() for item in queue]
                carryover = tuple(event for _, event in sorted(waiting, key=lambda i: i[0]))
            self._set_completion(
                ContinueAsNewAction(
                    id=-1,
                    input=self._continue_as_new_input,
                    version=self.version,
                    carryover_events=carryover,
                )
            )
            return
        try:
            encoded = serialization.dumps(output)
        except (TypeError, ValueError) as error:
            self._fail(error)
            return
        self._set_completion(
            CompleteOrchestration(
                id=-1, status=OrchestrationRuntimeStatus.Completed, result=encoded
            )
        )

    def _fail(self, error: BaseException) -> None:
        self._set_completion(
            CompleteOrchestration(
                id=-1,
                status=OrchestrationRuntimeStatus.Failed,
                failure=_failure_from_exception(error),
            )
        )

    def _set_completion(self, completion: _Completion) -> None:
        if self.completion is not None:
            return
        self.completion = completion
        self._waiting_on = None
        if self._generator is not None:
            self._generator.close()
            self._generator = None

    # -- the end of a step -------------------------------------------------------------
    def _flush_new_actions(self, recorded: list[HistoryEvent]) -> list[Action]:
        """Turn the actions the code asked for into history, as replay will find them."""
        actions: list[Action] = sorted(self._unmatched_actions.values(), key=lambda a: a.id)
        self._unmatched_actions.clear()
        completion = self.completion
        if completion is not None and self._completion_flushed:
            return []
        if isinstance(completion, CompleteOrchestration) and completion.status in _NO_FOLLOW_UP:
            # A failed or terminated instance sends nothing more; after a non-determinism
            # failure the actions come from code that no longer matches its history.
            actions = []
        now = self.current_time
        for marker in self.patches.markers(now):
            recorded.append(marker)
            self.history.append(HistoryRecord.of(marker))
        for action in actions:
            recorded.append(scheduling_event(action, now))
            self.history.append(HistoryRecord.of(recorded[-1]))
            if not isinstance(action, SendEvent):
                self._open_actions[action.id] = action
        if completion is not None:
            actions.append(completion)
            recorded.append(completion_event(completion, now))
            self.history.append(HistoryRecord.of(recorded[-1]))
            self._completion_flushed = True
        return actions
