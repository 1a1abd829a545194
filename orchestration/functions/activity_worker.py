"""The activity worker: runs an activity and sends its result back as a control message."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from orchestration.core import serialization
from orchestration.core.function_refs import input_type
from orchestration.core.history import FailureDetails, HistoryEvent, TaskCompleted, TaskFailed
from orchestration.functions.activity_bindings import ActivityBindings, binding_data
from orchestration.functions.bounded import run_bounded
from orchestration.functions.http_activity import BUILT_IN
from orchestration.functions.registry import Registry
from orchestration.storage.hub import TaskHub
from orchestration.storage.messages import ActivityMessage, ControlMessage, WorkItem
from orchestration.telemetry import metrics, tracing

log = logging.getLogger("orchestration.activity")

MAX_TRACE_CHARS = 64_000


class ActivityNotRegisteredError(LookupError):
    """An activity message names an activity the app does not register."""


def _failure(error: BaseException) -> FailureDetails:
    trace = "".join(traceback.format_exception(error))
    if len(trace) > MAX_TRACE_CHARS:
        trace = trace[: MAX_TRACE_CHARS // 2] + "\n...\n" + trace[-MAX_TRACE_CHARS // 2 :]
    return FailureDetails(type(error).__name__, str(error), trace)


class ActivityWorker:
    """Runs activities of one app; sync activities in threads, so they run concurrently."""

    def __init__(
        self,
        hub: TaskHub,
        registry: Registry,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        apply_result: Callable[[ControlMessage], Awaitable[None]] | None = None,
        bindings: ActivityBindings | None = None,
    ) -> None:
        self.hub = hub
        self.bindings = bindings or ActivityBindings()
        # Apply a result in this process (commit it) instead of a control-queue hop; the
        # work item is deleted only after, so a crash in between runs the activity again.
        self.apply_result = apply_result
        self.registry = registry
        self.clock = clock
        self.executed = 0
        # Async activities running on the loop, by the task that awaits them (LoopWatch).
        self.running_async: dict[asyncio.Task[Any], ActivityMessage] = {}

    def describe_running(self, task: asyncio.Task[Any] | None) -> str | None:
        """The async activity `task` is running, if any (for the loop watch's report)."""
        message = self.running_async.get(task) if task is not None else None
        if message is None:
            return None
        return (
            f"async activity {message.name!r} (instance {message.instance_id!r}, "
            f"task {message.task_id})"
        )

    async def execute(self, message: ActivityMessage, *, local: bool = False) -> HistoryEvent:
        """Run the activity and return its TaskCompleted or TaskFailed event. `local`: the
        orchestrator worker runs it in this process (no work item), for its span and metric."""
        if message.trace is None:
            return await self._execute(message, local)
        with tracing.activity_span(
            message.trace,
            name=message.name,
            instance_id=message.instance_id,
            task_id=message.task_id,
            attempt=message.attempt,
            local=local,
        ) as span:
            event = await self._execute(message, local)
            tracing.activity_outcome(span, event.failure if isinstance(event, TaskFailed) else None)
            return event

    async def execute_here(self, message: ActivityMessage) -> HistoryEvent:
        """Run an activity for the orchestrator worker of this process."""
        return await self.execute(message, local=True)

    async def _execute(self, message: ActivityMessage, local: bool) -> HistoryEvent:
        started = time.perf_counter()
        definition = self.registry.activities.get(message.name) or BUILT_IN.get(message.name)
        event: HistoryEvent
        try:
            if definition is None:
                known = ", ".join(sorted(self.registry.activities)) or "(none)"
                raise ActivityNotRegisteredError(
                    f"No activity named {message.name!r} is registered; known: {known}."
                )
            name = definition.input_name
            expected = input_type(definition.function, name)
            text = await self.hub.resolve(message.input)
            argument = serialization.decode(text, expected)
            kwargs: dict[str, Any] = {name: argument} if name else {}
            args: tuple[Any, ...] = () if kwargs else (argument,)
            prepared = None
            if definition.bindings:
                data = binding_data(name, serialization.loads(text), message.instance_id)
                prepared = await self.bindings.prepare(
                    definition.function, definition.bindings, data
                )
                kwargs.update(prepared.arguments)
            if definition.is_async:
                task = asyncio.current_task()
                if task is not None:
                    self.running_async[task] = message
                try:
                    value = await definition.function(*args, **kwargs)
                finally:
                    if task is not None:
                        self.running_async.pop(task, None)
            else:
                value = await asyncio.to_thread(definition.function, *args, **kwargs)
            if prepared is not None:
                await prepared.deliver()
            event = TaskCompleted(-1, self.clock(), message.task_id, serialization.dumps(value))
        except Exception as error:
            event = TaskFailed(-1, self.clock(), message.task_id, _failure(error))
        self.executed += 1
        seconds = time.perf_counter() - started
        outcome = "completed" if isinstance(event, TaskCompleted) else "failed"
        metrics.activity_done(message.name, outcome, local, seconds)
        log.info(
            "activity %s %s in %.1f ms",
            message.name,
            outcome,
            seconds * 1000,
            extra={
                "instance_id": message.instance_id,
                "step": message.task_id,
                "event": type(event).__name__,
            },
        )
        return event

    async def aclose(self) -> None:
        """Close the connections the activities' bindings opened."""
        await self.bindings.aclose()

    async def handle(self, message: ActivityMessage) -> None:
        await self.report(message, await self.execute(message))

    async def handle_item(self, item: WorkItem, attempts: int = 1) -> None:
        """Run a work item's activities (at once) and deliver their results.

        A batch seen before (`attempts` > 1) is not run again as a whole: one of its
        activities may have crashed the process. It is split into one work item per
        activity, which then each take the poison path on their own.
        """
        if isinstance(item, ActivityMessage):
            await self.handle(item)
            return
        if attempts > 1:
            log.warning(
                "splitting a batch of %d activities delivered again",
                len(item.activities),
                extra={"instance_id": item.instance_id, "event": "batch_split"},
            )
            failures = await run_bounded(item.activities, self.hub.send_activity, 16)
            if failures:
                raise failures[0]
            return
        outcomes = await asyncio.gather(
            *(self.handle(activity) for activity in item.activities), return_exceptions=True
        )
        failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if failure is not None:
            raise failure

    async def report(self, message: ActivityMessage, event: HistoryEvent) -> None:
        """Deliver an activity's result (or failure) to its instance."""
        result = ControlMessage(message.instance_id, event, message.execution_id)
        if self.apply_result is not None:
            await self.apply_result(result)
        else:
            await self.hub.send_control(result)
