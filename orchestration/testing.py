"""Unit-test orchestrators without servers or storage.

Two ways, besides the replay check of `orchestration.Replayer`:

- `orchestrator_generator_wrapper(generator)`: azure-functions-durable's own helper
  (`azure.durable_functions.testing`), for DF's documented pattern: drive the orchestrator's
  generator with a mocked context whose tasks carry a `result`.
- `OrchestrationTester`: run an orchestrator to its end in this process on the real replay
  core (the same `OrchestrationSession` the workers run, each step checked against a full
  replay of the history), with the app's activities run by the real activity worker (or
  fakes), sub-orchestrations run for real (or faked), entities run by the real batch runner,
  external events delivered when the test says, and a virtual clock: a timer of a week fires
  at once.

>>> tester = OrchestrationTester(app, activities={"say_hello": lambda city: f"Hi {city}"})
>>> result = tester.run("my_orchestrator")
>>> result.output, result.activity_names
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestration.core import serialization
from orchestration.core.actions import ContinueAsNewAction
from orchestration.core.durable_http import HTTP_ACTIVITY, DurableHttpRequest
from orchestration.core.entities import (
    EntityBatch,
    EntitySnapshot,
    entity_id_of,
    is_entity_instance,
    requests_of,
)
from orchestration.core.errors import NonDeterminismError
from orchestration.core.executor import (
    ExecutionResult,
    OrchestrationExecutor,
    OrchestrationSession,
)
from orchestration.core.history import (
    EventRaised,
    ExecutionStarted,
    FailureDetails,
    HistoryEvent,
    OrchestratorStarted,
    ParentInstance,
    SubOrchestrationInstanceCompleted,
    SubOrchestrationInstanceFailed,
)
from orchestration.core.outbox import (
    DeliverEvent,
    FireTimer,
    RunActivity,
    Sender,
    StartChild,
    outgoing,
)
from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.functions.activity_worker import ActivityWorker
from orchestration.functions.registry import ActivityDefinition, Registry
from orchestration.storage.hub import TaskHub
from orchestration.storage.messages import ActivityMessage

__all__ = [
    "ActivityCall",
    "Event",
    "OrchestrationResult",
    "OrchestrationTester",
    "orchestrator_generator_wrapper",
]

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(milliseconds=1)  # virtual time one step takes


def orchestrator_generator_wrapper(generator: Generator[Any, Any, Any]) -> Iterator[Any]:
    """Yield each task the orchestrator yields, sending it back its `result` (or throwing
    what reading `result` raises), then the orchestrator's return value, as DF's helper does.

    >>> values = list(orchestrator_generator_wrapper(my_orchestrator(mock_context)))
    """
    try:
        task = next(generator)
    except StopIteration as finished:  # returned before its first yield
        yield finished.value
        return
    while True:
        yield task
        try:
            try:
                value = task.result
            except Exception as error:  # a failed task: the orchestrator sees it raised
                task = generator.throw(error)
            else:
                task = generator.send(value)
        except StopIteration as finished:
            yield finished.value
            return


@dataclass(frozen=True)
class Event:
    """An external event for the instance under test, `after` its start (virtual time)."""

    name: str
    data: Any = None
    after: timedelta = timedelta(0)


@dataclass(frozen=True)
class ActivityCall:
    """An activity the orchestration ran: its name and the input it got."""

    name: str
    input: Any
    instance_id: str


@dataclass(frozen=True)
class OrchestrationResult:
    """How the orchestration under test ended."""

    instance_id: str
    status: OrchestrationRuntimeStatus
    output: Any
    failure: FailureDetails | None
    custom_status: Any
    history: list[HistoryEvent]
    """The last execution's history, as the engine records it (for `Replayer`)."""
    activity_calls: list[ActivityCall]
    """Every activity run, of this instance and of its sub-orchestrations, in order."""
    finished_at: datetime
    """Virtual time: a timer moves it to when the timer fires."""

    @property
    def activity_names(self) -> list[str]:
        return [call.name for call in self.activity_calls]


@dataclass
class _Instance:
    instance_id: str
    name: str
    parent: ParentInstance | None
    session: OrchestrationSession | None = None
    history: list[HistoryEvent] = field(default_factory=list)
    inbox: list[HistoryEvent] = field(default_factory=list)
    result: ExecutionResult | None = None
    generation: int = 0


def _registry_of(app: Any) -> Registry:
    if app is None:
        return Registry()
    if isinstance(app, Registry):
        return app
    registry = getattr(app, "_registry", None)  # a DFApp or a Blueprint
    wiring = getattr(app, "_durable_wiring", None)  # a plain FunctionApp with blueprints
    registry = registry if registry is not None else getattr(wiring, "registry", None)
    if not isinstance(registry, Registry):
        raise TypeError(
            f"{type(app).__name__} holds no durable functions: pass a DFApp, a Blueprint, "
            f"or a FunctionApp with durable blueprints registered."
        )
    return registry


def _user_function(function: Any) -> Any:
    inner = getattr(getattr(function, "_function", None), "_func", None)  # a FunctionBuilder
    return inner if callable(inner) else function


class OrchestrationTester:
    """Runs orchestrations of an app (or of functions given) in memory, to their end."""

    def __init__(
        self,
        app: Any = None,
        *,
        orchestrators: Mapping[str, Callable[..., Any]] | None = None,
        activities: Mapping[str, Any] | None = None,
        sub_orchestrators: Mapping[str, Any] | None = None,
        entities: Mapping[str, Callable[..., Any]] | None = None,
        http: Callable[[DurableHttpRequest], Mapping[str, Any]] | None = None,
        start_time: datetime = START,
        replay_check: bool = True,
        max_steps: int = 10_000,
    ) -> None:
        """`app`: a DFApp, Blueprint or FunctionApp whose durable functions run as registered.

        `orchestrators`, `activities` and `entities` add functions or replace the app's by
        name; an activity given as a value that is not callable is its fixed result.
        `sub_orchestrators` fakes children by name: a function of the child's input (or a
        fixed value), whose return is the child's output and whose exception fails it.
        `http` answers `context.call_http`: a function of the `DurableHttpRequest` that
        returns a `DurableHttpResponse` (or raises, which fails the task); without it a
        test's call_http is refused rather than sent.
        `replay_check`: replay the whole history at every step and require the same
        decisions (what the engine relies on; catches code that is not deterministic)."""
        source = _registry_of(app)
        self.registry = Registry()
        fakes = dict(activities or {})
        self.registry.merge(source)
        for name, function in (orchestrators or {}).items():
            self.registry.orchestrators[name] = _user_function(function)
        for name, fake in fakes.items():
            self.registry.activities.pop(name, None)
            target = _user_function(fake)
            self.registry.add_activity(name, target if callable(target) else _constant(target))
        for name, entity in (entities or {}).items():
            self.registry.entities[name.lower()] = _user_function(entity)
        self.registry.activities[HTTP_ACTIVITY] = ActivityDefinition(
            HTTP_ACTIVITY, _http_activity(http), "request", is_async=False
        )
        self.sub_orchestrators = dict(sub_orchestrators or {})
        self.now = start_time
        self.replay_check = replay_check
        self.max_steps = max_steps
        self.activity_calls: list[ActivityCall] = []
        self._instances: dict[str, _Instance] = {}
        self._entities: dict[str, EntitySnapshot] = {}
        self._entity_inbox: dict[str, list[EventRaised]] = {}
        self._later: list[tuple[datetime, int, str, HistoryEvent]] = []
        self._order = itertools.count()
        self._activities: list[tuple[str, ActivityMessage]] = []
        self._worker = ActivityWorker(TaskHub.in_memory(), self.registry, clock=lambda: self.now)

    # -- running -------------------------------------------------------------------------
    def run(
        self,
        name: str | Any,
        input_: Any = None,
        *,
        instance_id: str = "test-instance",
        events: Iterable[Event] = (),
        version: str | None = None,
    ) -> OrchestrationResult:
        """Start orchestration `name` (or a decorated orchestrator) and run it to its end."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(
                self.run_async(
                    name, input_, instance_id=instance_id, events=events, version=version
                )
            )
        raise RuntimeError("an event loop is running here: use `await tester.run_async(...)`")

    async def run_async(
        self,
        name: str | Any,
        input_: Any = None,
        *,
        instance_id: str = "test-instance",
        events: Iterable[Event] = (),
        version: str | None = None,
    ) -> OrchestrationResult:
        """`run`, for async tests (async activities run on the test's loop)."""
        if not isinstance(name, str):
            function = _user_function(name)
            name = getattr(function, "__durable_name__", None) or function.__name__
            self.registry.orchestrators.setdefault(name, function)
        started = self.now
        self._start(name, instance_id, serialization.dumps(input_), version, None)
        for event in events:
            raised = EventRaised(-1, started + event.after, event.name,
                                 serialization.dumps(event.data))  # fmt: skip
            self._schedule(started + event.after, instance_id, raised)
        await self._settle()
        return self._result(instance_id)

    def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Deliver an event now (between runs, or from a fake activity)."""
        self._deliver(instance_id, EventRaised(-1, self.now, name, serialization.dumps(data)))

    # -- the loop ------------------------------------------------------------------------
    async def _settle(self) -> None:
        for _ in range(self.max_steps):
            ready = next((i for i in self._instances.values() if i.inbox), None)
            if ready is not None:
                self._step(ready)
            elif self._entity_inbox:
                self._run_entity(next(iter(self._entity_inbox)))
            elif self._deliver_due():
                continue
            elif self._activities:
                await self._run_activity()
            elif self._later and not self._all_done():
                self._later.sort()
                at, _, target, event = self._later.pop(0)
                self.now = max(self.now, at)
                self._deliver(target, event)
            else:
                return
        raise AssertionError(f"the orchestration did not settle in {self.max_steps} steps")

    def _deliver_due(self) -> bool:
        """Deliver the timers and events due by now; True if there were any."""
        due = sorted(item for item in self._later if item[0] <= self.now)
        for item in due:
            self._later.remove(item)
            self._deliver(item[2], item[3])
        return bool(due)

    def _all_done(self) -> bool:
        return all(i.result is not None and i.result.is_done for i in self._instances.values())

    def _start(
        self,
        name: str,
        instance_id: str,
        input_: str | None,
        version: str | None,
        parent: ParentInstance | None,
        generation: int = 0,
        carryover: Sequence[HistoryEvent] = (),
    ) -> None:
        instance = _Instance(instance_id, name, parent, generation=generation)
        self._instances[instance_id] = instance
        execution = f"{instance_id}:{generation}"
        started = ExecutionStarted(-1, self.now, name=name, instance_id=instance_id,
                                   input=input_, version=version, parent=parent,
                                   execution_id=execution)  # fmt: skip
        instance.inbox = [started, *carryover]

    def _step(self, instance: _Instance) -> None:
        self.now += STEP
        new_events: list[HistoryEvent] = [OrchestratorStarted(-1, self.now), *instance.inbox]
        instance.inbox = []
        if instance.session is None:
            instance.session = OrchestrationSession(self.registry.orchestrator,
                                                    instance.instance_id)  # fmt: skip
        live = instance.session.step(new_events)
        if self.replay_check:
            replayed = OrchestrationExecutor(self.registry.orchestrator).execute(
                instance.instance_id, instance.history, new_events
            )
            if replayed.actions != live.actions or replayed.status != live.status:
                raise NonDeterminismError(
                    f"{instance.name!r} decides differently when its history is replayed "
                    f"(step {len(instance.history)}): live {[a.describe() for a in live.actions]}"
                    f", replayed {[a.describe() for a in replayed.actions]}. Orchestrator code "
                    f"must be deterministic: use context.current_utc_datetime, new_uuid, "
                    f"and activities for I/O."
                )
        instance.result = live
        instance.history.extend(live.new_events)
        sender = Sender(instance.instance_id, instance.name, instance.session.execution_id,
                        instance.parent)  # fmt: skip
        for item in outgoing(sender, live.actions, self.now):
            if isinstance(item, RunActivity):
                message = ActivityMessage(instance.instance_id, sender.execution_id,
                                          item.task_id, item.name, item.input)  # fmt: skip
                self._activities.append((instance.instance_id, message))
            elif isinstance(item, FireTimer):
                self._schedule(item.fire_at, instance.instance_id, item.event)
            elif isinstance(item, StartChild):
                self._start_child(item)
            elif isinstance(item, DeliverEvent):
                self._deliver(item.instance_id, item.event)
        for action in live.actions:
            if isinstance(action, ContinueAsNewAction):
                self._start(instance.name, instance.instance_id, action.input, action.version,
                            instance.parent, instance.generation + 1,
                            [*action.carryover_events, *instance.inbox])  # fmt: skip

    def _start_child(self, child: StartChild) -> None:
        fake = self.sub_orchestrators.get(child.name)
        if fake is None:
            self._start(child.name, child.instance_id, child.input, child.version, child.parent)
            return
        task = child.parent.task_scheduled_id
        event: HistoryEvent
        try:
            value = fake(serialization.decode(child.input)) if callable(fake) else fake
        except Exception as error:
            failure = FailureDetails(type(error).__name__, str(error))
            event = SubOrchestrationInstanceFailed(-1, self.now, task, failure)
        else:
            event = SubOrchestrationInstanceCompleted(-1, self.now, task,
                                                      serialization.dumps(value))  # fmt: skip
        self._deliver(child.parent.instance_id, event)

    async def _run_activity(self) -> None:
        instance_id, message = self._activities.pop(0)
        shown = serialization.decode(message.input)
        self.activity_calls.append(ActivityCall(message.name, shown, instance_id))
        self._deliver(instance_id, await self._worker.execute(message))

    def _run_entity(self, entity: str) -> None:
        raised = self._entity_inbox.pop(entity)
        requests = [r for event in raised for r in requests_of(event.name, event.input)]
        entity_id = entity_id_of(entity)
        batch = EntityBatch(entity_id, self.registry.entity(entity_id.name))
        outcome = batch.run(self._entities.get(entity, EntitySnapshot()), requests, self.now)
        self._entities[entity] = outcome.snapshot
        for message in outcome.messages:
            event = EventRaised(-1, self.now, message.event_name, message.input)
            self._deliver(message.instance_id, event)

    def _schedule(self, at: datetime, instance_id: str, event: HistoryEvent) -> None:
        self._later.append((at, next(self._order), instance_id, event))

    def _deliver(self, instance_id: str, event: HistoryEvent) -> None:
        if is_entity_instance(instance_id):
            assert isinstance(event, EventRaised)
            self._entity_inbox.setdefault(instance_id, []).append(event)
            return
        instance = self._instances.get(instance_id)
        if instance is None:
            raise LookupError(f"no instance {instance_id!r} in this test")
        instance.inbox.append(event)

    def _result(self, instance_id: str) -> OrchestrationResult:
        instance = self._instances[instance_id]
        outcome = instance.result
        assert outcome is not None
        return OrchestrationResult(
            instance_id=instance_id,
            status=outcome.status,
            output=serialization.decode(outcome.output),
            failure=outcome.failure,
            custom_status=serialization.decode(outcome.custom_status),
            history=list(instance.history),
            activity_calls=list(self.activity_calls),
            finished_at=self.now,
        )

    def entity_state(self, entity_id: Any) -> Any:
        """The state of an entity the orchestrations used (None if it does not exist)."""
        snapshot = self._entities.get(str(entity_id))
        if snapshot is None or not snapshot.exists:
            return None
        return serialization.decode(snapshot.state)


def _http_activity(
    answer: Callable[[DurableHttpRequest], Mapping[str, Any]] | None,
) -> Callable[[Any], dict[str, Any]]:
    def fake_http(request: Any) -> dict[str, Any]:
        parsed = DurableHttpRequest.from_json(
            serialization.loads(request) if isinstance(request, str) else request
        )
        if answer is None:
            raise RuntimeError(
                f"call_http({parsed.method} {parsed.uri}) in a test: pass "
                f"OrchestrationTester(http=...) to answer it"
            )
        return dict(answer(parsed))

    return fake_http


def _constant(value: Any) -> Callable[[Any], Any]:
    def fixed(_input: Any = None) -> Any:
        return value

    return fixed
