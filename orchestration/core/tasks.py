"""Durable tasks: what an orchestrator yields, and how their completions propagate.

A task completes once, from a history event (activity result, timer, external event, ...) or
from its children (`task_all`, `task_any`, retries). Completion is pushed to parent tasks at
once, so a nested `task_all(task_any(...), ...)` settles within the event that decides it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from orchestration.core import serialization
from orchestration.core.errors import OrchestratorUsageError, TaskFailedError
from orchestration.core.history import FailureDetails

if TYPE_CHECKING:
    from orchestration.core.retry import RetryOptions


class TaskState(Enum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class TaskBase:
    """A unit of durable work the orchestrator can `yield` on."""

    __slots__ = ("_exception", "_parents", "_value", "state")

    def __init__(self) -> None:
        self.state = TaskState.RUNNING
        self._value: Any = None
        self._exception: BaseException | None = None
        self._parents: list[CompoundTask] | None = None

    @property
    def is_completed(self) -> bool:
        """True once the task succeeded or failed."""
        return self.state is not TaskState.RUNNING

    @property
    def is_faulted(self) -> bool:
        return self.state is TaskState.FAILED

    @property
    def result(self) -> Any:
        """The task's value once it succeeded (for `task_any`, the winning task)."""
        return self._value

    @property
    def exception(self) -> BaseException | None:
        return self._exception

    def _succeed(self, value: Any) -> None:
        if self.state is not TaskState.RUNNING:
            return
        self.state = TaskState.SUCCEEDED
        self._value = value
        self._notify_parents()

    def _fail(self, exception: BaseException) -> None:
        if self.state is not TaskState.RUNNING:
            return
        self.state = TaskState.FAILED
        self._exception = exception
        self._notify_parents()

    def _notify_parents(self) -> None:
        if self._parents:
            for parent in self._parents:
                parent._on_child_done(self)

    def _add_parent(self, parent: CompoundTask) -> None:
        if self._parents is None:
            self._parents = [parent]
        else:
            self._parents.append(parent)


class AtomicTask(TaskBase):
    """A task backed by one action (activity, sub-orchestration) or one external event."""

    __slots__ = ("action_id", "description", "expected_type")

    def __init__(self, action_id: int, description: str, expected_type: Any = None) -> None:
        super().__init__()
        self.action_id = action_id
        self.description = description
        # The type the result is rebuilt as (custom classes), as DF's `expected_type=`.
        self.expected_type = expected_type

    def _succeed_with_payload(self, payload: str | None) -> None:
        self._succeed(serialization.decode(payload, self.expected_type))


class TimerTask(AtomicTask):
    """A durable timer. `cancel()` lets the orchestration finish without waiting for it."""

    __slots__ = ("fire_at", "is_cancelled")

    def __init__(self, action_id: int, fire_at: datetime) -> None:
        super().__init__(action_id, f"timer until {fire_at.isoformat()}")
        self.fire_at = fire_at
        self.is_cancelled = False

    def cancel(self) -> None:
        if self.is_completed:
            raise ValueError("Cannot cancel a timer that has already fired.")
        self.is_cancelled = True


class EntityCallTask(AtomicTask):
    """A call to an entity operation: the entity's answer is its result, or its failure."""

    __slots__ = ()

    def _succeed(self, value: Any) -> None:
        answer = value if isinstance(value, dict) else {}
        if "error" in answer:
            failure = FailureDetails.from_dict(answer["error"])
            self._fail(TaskFailedError(f"{self.description} failed: {failure.describe()}", failure))
            return
        super()._succeed(serialization.decode(answer.get("result"), self.expected_type))


class CompoundTask(TaskBase):
    """A task made of other tasks."""

    __slots__ = ("children", "pending")

    def __init__(self, children: Sequence[TaskBase]) -> None:
        super().__init__()
        for child in children:
            if not isinstance(child, TaskBase):
                raise OrchestratorUsageError(
                    f"task_all/task_any take durable tasks, got {type(child).__name__}"
                )
        self.children = list(children)
        self.pending = sum(1 for child in self.children if not child.is_completed)
        for child in self.children:
            child._add_parent(self)

    def _on_child_done(self, child: TaskBase) -> None:
        raise NotImplementedError


class WhenAllTask(CompoundTask):
    """Succeeds with every child's result, in order; fails as soon as one child fails."""

    __slots__ = ()

    def __init__(self, children: Sequence[TaskBase]) -> None:
        super().__init__(children)
        failed = next((child for child in self.children if child.is_faulted), None)
        if failed is not None:
            self._fail(failed._exception or RuntimeError("task failed"))
        elif self.pending == 0:
            self._succeed([child._value for child in self.children])

    def _on_child_done(self, child: TaskBase) -> None:
        self.pending -= 1
        if child.state is TaskState.FAILED:
            self._fail(child._exception or RuntimeError("task failed"))
        elif self.pending == 0:
            self._succeed([c._value for c in self.children])


class WhenAnyTask(CompoundTask):
    """Succeeds with the first child to complete (succeeded or failed), the child itself."""

    __slots__ = ()

    def __init__(self, children: Sequence[TaskBase]) -> None:
        if not children:
            raise OrchestratorUsageError("task_any needs at least one task")
        super().__init__(children)
        done = next((child for child in self.children if child.is_completed), None)
        if done is not None:
            self._succeed(done)

    def _on_child_done(self, child: TaskBase) -> None:
        self.pending -= 1
        self._succeed(child)


class ChainTask(CompoundTask):
    """A task made of children started one after another, each once the last is done."""

    __slots__ = ()

    def _watch(self, child: TaskBase) -> None:
        self.children.append(child)
        child._add_parent(self)
        if child.is_completed:
            self._on_child_done(child)


class RetryableTask(ChainTask):
    """An activity or sub-orchestration retried on failure after durable-timer waits."""

    __slots__ = (
        "_attempts",
        "_create_attempt",
        "_create_timer",
        "_first_attempt_at",
        "_now",
        "_options",
    )

    def __init__(
        self,
        options: RetryOptions,
        create_attempt: Callable[[], TaskBase],
        create_timer: Callable[[datetime], TaskBase],
        now: Callable[[], datetime],
    ) -> None:
        super().__init__([])
        self._options = options
        self._create_attempt = create_attempt
        self._create_timer = create_timer
        self._now = now
        self._first_attempt_at = now()
        self._attempts = 0
        self._start_attempt()

    def _start_attempt(self) -> None:
        self._attempts += 1
        self._watch(self._create_attempt())

    def _on_child_done(self, child: TaskBase) -> None:
        if isinstance(child, TimerTask):
            self._start_attempt()
        elif child.state is TaskState.SUCCEEDED:
            self._succeed(child._value)
        else:
            now = self._now()
            delay = self._options.next_delay(self._attempts, self._first_attempt_at, now)
            if delay is None:
                self._fail(child._exception or RuntimeError("task failed"))
            else:
                self._watch(self._create_timer(now + delay))
