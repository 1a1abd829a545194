"""The orchestrator worker: turns control-queue messages into committed orchestrator steps.

Messages for one instance that arrive together are coalesced into one step. Each instance's
live session (its suspended generator) is cached with the ETag of the commit that produced
it, so a step on a warm instance reads nothing: it commits conditionally on the cached ETag,
and a 412 means another worker moved on, so the cache is dropped and the step re-run from
storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from orchestration.azure import StorageError
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
from orchestration.core.executor import ExecutionResult, OrchestrationSession
from orchestration.core.history import (
    EventRaised,
    ExecutionCompleted,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    FailureDetails,
    HistoryEvent,
    OrchestratorStarted,
    ParentInstance,
    SubOrchestrationInstanceCompleted,
    SubOrchestrationInstanceFailed,
    TimerFired,
)
from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.functions.bounded import run_bounded
from orchestration.functions.precise_timers import call_later_precisely
from orchestration.functions.registry import Registry
from orchestration.functions.step_runner import OrchestratorBlockedError, StepRunner
from orchestration.storage.hub import (
    MAX_QUEUE_DELAY,
    ConcurrencyError,
    InstanceExistsError,
    InstanceState,
    TaskHub,
)
from orchestration.storage.mailbox import Mailbox
from orchestration.storage.messages import (
    ActivityBatch,
    ActivityMessage,
    ControlMessage,
    WorkItem,
    pack_activities,
)

log = logging.getLogger("orchestration.orchestrator")

# Events without a natural id: a redelivered copy must be recognised by its message id.
_ONCE_ONLY = (EventRaised, ExecutionSuspended, ExecutionResumed, ExecutionTerminated)
_FINAL = (OrchestrationRuntimeStatus.Completed, OrchestrationRuntimeStatus.Terminated)
MAX_COMMIT_ATTEMPTS = 8
REPAIR_DELAY = timedelta(seconds=15)
BLOCKED_RETRY_DELAY = timedelta(seconds=1)
T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _activity_messages(
    state: InstanceState, activities: list[ScheduleActivity]
) -> list[ActivityMessage]:
    return [
        ActivityMessage(state.instance_id, state.execution_id, a.id, a.name, a.input)
        for a in activities
    ]


class _StaleCache(Exception):
    """A cached session dropped every event of a step: it may be behind storage."""


@dataclass(slots=True)
class _Delivery:
    message: ControlMessage
    dequeue_count: int
    done: asyncio.Future[None]
    # True when an undeleted queue message stands behind this delivery until it is done:
    # only then may the step's activities run here, since a crash brings that message back.
    durable: bool = True
    # A local start's caller waits for the step's commit (not for its later local rounds).
    committed: asyncio.Future[InstanceState] | None = None
    # No queue message stands behind this work (a local start and its later rounds): the
    # commits guard it instead, with the state row's wake-up time (InstanceState.wake_at).
    row_guarded: bool = False


@dataclass(slots=True)
class _Cached:
    state: InstanceState
    session: OrchestrationSession
    creating: bool = False  # a local start's state, not yet in storage


@dataclass(slots=True)
class _LocalWork:
    """Activities a committed step leaves to this process; some may already be running."""

    messages: list[ActivityMessage] = field(default_factory=list)
    running: dict[int, asyncio.Future[HistoryEvent]] = field(default_factory=dict)
    sends: list[asyncio.Future[None]] = field(default_factory=list)  # the step's messages


@dataclass(slots=True)
class WorkerStats:
    steps: int = 0
    events: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    conflicts: int = 0
    stale_reloads: int = 0
    resends: int = 0
    dropped: int = 0
    local_activities: int = 0
    outage_retries: int = 0
    local_timers: int = 0
    folded_steps: int = 0
    unsent: int = 0


@dataclass(slots=True)
class _Inbox:
    deliveries: list[_Delivery] = field(default_factory=list)


def is_transient(error: StorageError) -> bool:
    """An outage or throttling (no answer, 408, 429, 5xx): worth trying again."""
    return error.status == 0 or error.status >= 500 or error.status in (408, 429)


class _OutagePatience:
    """Backoff while storage is unreachable (refused connections, 5xx), up to a deadline."""

    def __init__(self, seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._give_up = self._loop.time() + seconds
        self.pause = 0.25

    async def wait(self, error: StorageError, instance_id: str | None = None) -> None:
        """Sleep before the next try; re-raise `error` if it is no outage or time is up.

        With `instance_id`, the retry is logged.
        """
        if not is_transient(error) or self._loop.time() > self._give_up:
            raise error
        if instance_id is not None:
            log.warning(
                "storage unavailable (%s); retrying in %.1f s",
                error,
                self.pause,
                extra={"instance_id": instance_id, "event": "storage_retry"},
            )
        await asyncio.sleep(self.pause)
        self.pause = min(self.pause * 2, 5.0)


class OrchestratorWorker:
    """Processes control messages for the instances of one task hub."""

    def __init__(
        self,
        hub: TaskHub,
        registry: Registry,
        *,
        clock: Callable[[], datetime] = utc_now,
        cache_size: int = 2000,
        max_timer_interval: timedelta | None = None,
        local_batch: int = 8,
        local_rounds: int = 1000,
        local_seconds: float = 20.0,
        outage_patience: float = 60.0,
        send_patience: float = 600.0,
        send_concurrency: int = 32,
        steps: StepRunner | None = None,
        blocked_limit: int = 5,
        mailbox: Mailbox | None = None,
        local_timer_horizon: timedelta = timedelta(minutes=2),
        local_group_steps: int = 8,
        local_group_seconds: float = 0.25,
        local_guard: timedelta = timedelta(seconds=30),
        local_start_seconds: float = 0.02,
    ) -> None:
        self.hub = hub
        self.registry = registry
        self.clock = clock
        self.cache_size = cache_size
        self.max_timer_interval = max_timer_interval
        self.local_batch = local_batch
        self.local_rounds = local_rounds
        self.local_seconds = local_seconds
        self.outage_patience = outage_patience
        # A step's messages are retried this long while storage is unreachable, with at
        # most `send_concurrency` of them in flight (the hub bounds all sends too).
        self.send_patience = send_patience
        self.send_concurrency = send_concurrency
        # Orchestrator code runs in threads, watched (see StepRunner); an instance whose
        # steps block `blocked_limit` times in this process ends Failed.
        self.steps = steps or StepRunner()
        # This process's commits, for the clients that wait on them (see Mailbox).
        self.mailbox = mailbox or Mailbox()
        self.blocked_limit = blocked_limit
        self._blocked: dict[str, tuple[int, OrchestratorBlockedError]] = {}
        self.local_timer_horizon = local_timer_horizon
        self.local_group_steps = local_group_steps
        self.local_group_seconds = local_group_seconds
        self.local_guard = local_guard
        self.local_start_seconds = local_start_seconds
        self._proven: set[str] = set()  # activities that have run here and come back
        # Set by the engine to run small batches of activities in this process (no queue
        # hop); None sends every activity through the work-item queue.
        self.local_runner: Callable[[ActivityMessage], Awaitable[HistoryEvent]] | None = None
        self.stats = WorkerStats()
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._inboxes: dict[str, _Inbox] = {}
        self._seeds: dict[str, InstanceState] = {}  # local starts not yet committed
        # Executions seen completed or terminated here (never revived: rewind applies to
        # failed ones only), so that late copies of their messages (a redelivery, a repair's
        # re-send) are dropped without reading the instance.
        self._finished: OrderedDict[str, str] = OrderedDict()
        self.finished_memory = 10_000
        self._running: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- entry point --------------------------------------------------------------------
    async def handle(
        self, message: ControlMessage, dequeue_count: int = 1, *, durable: bool = True
    ) -> None:
        """Apply one control message; returns once its effect is committed (or dropped).

        `durable=False` for an event with no queue message held behind it: its step sends
        activities through the queue.
        """
        loop = asyncio.get_running_loop()
        delivery = _Delivery(message, dequeue_count, loop.create_future(), durable)
        self._enqueue(delivery)
        await delivery.done

    def start(
        self, state: InstanceState, message: ControlMessage
    ) -> tuple[asyncio.Future[InstanceState], asyncio.Future[None]]:
        """Run a new instance's first step here; its commit creates the instance.

        `state` is the Pending instance, not yet in storage (its ETag is that of the finished
        instance it replaces, if any). No queue message stands behind this work: each of its
        commits that leaves local work sets the state row's `wake_at` (`local_guard`
        ahead), and the timer sweeper wakes an instance whose wake-up time has passed. Its
        activities start only after the first commit, so one that kills the process cannot
        take the instance's creation with it. Returns two futures: the first commit (it
        raises InstanceExistsError if the instance was created meanwhile) and the end of the
        work this process does for the start, local activities included.
        """
        loop = asyncio.get_running_loop()
        self._cache.pop(state.instance_id, None)
        self._seeds[state.instance_id] = state
        delivery = _Delivery(message, 1, loop.create_future(), True, loop.create_future(), True)
        self._enqueue(delivery)
        assert delivery.committed is not None
        return delivery.committed, delivery.done

    def _enqueue(self, delivery: _Delivery) -> None:
        instance_id = delivery.message.instance_id
        inbox = self._inboxes.setdefault(instance_id, _Inbox())
        inbox.deliveries.append(delivery)
        if instance_id not in self._running:
            self._running.add(instance_id)
            self._spawn(self._drain(instance_id))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background, keeping a reference until it ends."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, instance_id: str) -> None:
        try:
            while True:
                inbox = self._inboxes.get(instance_id)
                if inbox is None or not inbox.deliveries:
                    self._inboxes.pop(instance_id, None)
                    return
                batch, inbox.deliveries = inbox.deliveries, []
                # The sends a step implies run on while the instance's next batch is
                # stepped (a locally fired timer need not wait for them); each delivery is
                # done once its own commits and sends are.
                sends: list[asyncio.Future[None]] = []
                failure: Exception | None = None
                try:
                    await self._process(instance_id, batch, sends)
                except Exception as error:
                    failure = error
                    self._cache.pop(instance_id, None)
                    self._seeds.pop(instance_id, None)
                for delivery in batch:
                    if delivery.committed is not None and not delivery.committed.done():
                        self._seeds.pop(instance_id, None)
                        delivery.committed.set_exception(
                            failure
                            or RuntimeError(f"the start of {instance_id!r} was not committed")
                        )
                if sends:
                    self._spawn(self._settle(batch, sends, failure))
                else:
                    self._settle_now(batch, failure)
        finally:
            self._running.discard(instance_id)

    async def _settle(
        self, batch: list[_Delivery], sends: list[asyncio.Future[None]], failure: Exception | None
    ) -> None:
        for outcome in await asyncio.gather(*sends, return_exceptions=True):
            if failure is None and isinstance(outcome, Exception):
                failure = outcome
        self._settle_now(batch, failure)

    @staticmethod
    def _settle_now(batch: list[_Delivery], failure: Exception | None) -> None:
        for delivery in batch:
            if delivery.done.done():
                continue
            if failure is None:
                delivery.done.set_result(None)
            else:
                delivery.done.set_exception(failure)

    # -- one step -----------------------------------------------------------------------
    async def _load(self, instance_id: str) -> _Cached | None:
        cached = self._cache.get(instance_id)
        if cached is not None:
            self._cache.move_to_end(instance_id)
            self.stats.cache_hits += 1
            return cached
        seed = self._seeds.get(instance_id)
        if seed is not None:
            return _Cached(seed, self._new_session(instance_id), creating=True)
        self.stats.cache_misses += 1
        state, history = await self.hub.load(instance_id)
        if state is None:
            return None
        session = self._new_session(instance_id)
        await self.steps.run(instance_id, session, functools.partial(session.replay, history))
        return _Cached(state, session)

    def _new_session(self, instance_id: str) -> OrchestrationSession:
        return OrchestrationSession(
            self.registry.orchestrator, instance_id, max_timer_interval=self.max_timer_interval
        )

    def _remember(self, instance_id: str, entry: _Cached) -> None:
        if entry.state.status.is_terminal:
            self._cache.pop(instance_id, None)
            if entry.state.status in _FINAL:
                self._finished[instance_id] = entry.state.execution_id
                self._finished.move_to_end(instance_id)
                while len(self._finished) > self.finished_memory:
                    self._finished.popitem(last=False)
            return
        self._cache[instance_id] = entry
        self._cache.move_to_end(instance_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def _process(
        self, instance_id: str, batch: list[_Delivery], sends: list[asyncio.Future[None]]
    ) -> None:
        """Commit the batch's step, then run local activities and commit their results."""
        finished = self._finished.get(instance_id)
        if finished is not None and all(
            d.message.execution_id == finished and d.dequeue_count <= 1 for d in batch
        ):
            self.stats.dropped += len(batch)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.local_seconds
        # Activities run here only behind a held message, and not after a crash: a message
        # seen before (dequeue count > 1) may have been killed by one of them.
        guarded = any(d.durable for d in batch) and all(d.dequeue_count <= 1 for d in batch)
        row_guarded = any(d.row_guarded for d in batch)
        for round_number in range(self.local_rounds + 1):
            work = await self._commit_step(instance_id, batch, guarded, row_guarded)
            sends.extend(work.sends)
            runner = self.local_runner
            waiting: list[tuple[ActivityMessage, Awaitable[HistoryEvent]]] = []
            to_queue: list[ActivityMessage] = []
            stay = not (
                runner is None
                or not guarded
                or round_number == self.local_rounds
                or loop.time() > deadline
            )
            for message in work.messages:
                running = work.running.get(message.task_id)
                if running is not None:  # started before the commit: it finishes here
                    waiting.append((message, running))
                elif stay and runner is not None:
                    self.stats.local_activities += 1
                    waiting.append((message, self._run_local(message)))
                else:
                    to_queue.append(message)
            if to_queue:
                await self._send_all(instance_id, pack_activities(to_queue), self.hub.send_activity)
            if not waiting:
                return
            events = await asyncio.gather(*(outcome for _, outcome in waiting))
            batch = [
                _Delivery(
                    ControlMessage(m.instance_id, e, m.execution_id),
                    1,
                    loop.create_future(),
                    row_guarded=row_guarded,
                )
                for (m, _), e in zip(waiting, events, strict=True)
            ]

    async def _commit_step(
        self,
        instance_id: str,
        batch: list[_Delivery],
        guarded: bool = False,
        row_guarded: bool = False,
    ) -> _LocalWork:
        """Run and commit one step, retrying conflicts at once and storage outages patiently.

        Both retries are safe by construction: the commit is conditional on the ETag, so a
        retried step either commits once or finds its events already applied and drops them.
        """
        patience = _OutagePatience(self.outage_patience)
        conflicts = 0
        while True:
            entry: _Cached | None = None
            try:
                entry = await self._load(instance_id)
                if entry is None:
                    self.stats.dropped += len(batch)
                    log.warning(
                        "dropping %d message(s) for unknown instance",
                        len(batch),
                        extra={"instance_id": instance_id, "event": "unknown_instance"},
                    )
                    return _LocalWork()
                work = await self._step(instance_id, entry, batch, guarded, row_guarded)
                if self._blocked:
                    self._blocked.pop(instance_id, None)
                return work
            except OrchestratorBlockedError as error:
                self._cache.pop(instance_id, None)
                creating = entry is not None and entry.creating
                if creating:
                    self._seeds.pop(instance_id, None)
                if await self._blocked_too_often(instance_id, error, creating):
                    return _LocalWork()
                if not creating and all(d.row_guarded or not d.durable for d in batch):
                    # No queue message comes back for this step: ask for another try.
                    self._spawn(self._request_repair(instance_id, BLOCKED_RETRY_DELAY))
                # The delivery fails (a local start's: the engine then creates the instance
                # the queued way).
                raise
            except _StaleCache:
                self._cache.pop(instance_id, None)
                self.stats.stale_reloads += 1
            except ConcurrencyError as error:
                self._cache.pop(instance_id, None)
                if entry is not None and entry.creating:
                    self._seeds.pop(instance_id, None)
                    raise InstanceExistsError(
                        f"An instance with id {instance_id!r} was created concurrently."
                    ) from error
                self.stats.conflicts += 1
                conflicts += 1
                if conflicts >= MAX_COMMIT_ATTEMPTS:
                    raise
                await asyncio.sleep(0.005 * conflicts)
            except StorageError as error:
                self._cache.pop(instance_id, None)
                await patience.wait(error, instance_id)
                self.stats.outage_retries += 1
            except BaseException:
                self._cache.pop(instance_id, None)
                raise

    async def _step(
        self,
        instance_id: str,
        entry: _Cached,
        batch: list[_Delivery],
        guarded: bool = False,
        row_guarded: bool = False,
    ) -> _LocalWork:
        """One step; returns the activities this process should run itself."""
        state, session = entry.state, entry.session
        # Only a message seen before (or a sweeper's wake-up) hints that an earlier worker
        # died after its commit; anything else must not re-send, or duplicates would breed.
        redelivered = any(d.dequeue_count > 1 or d.message.event is None for d in batch)
        events: list[HistoryEvent] = []
        applied: list[str] = []
        for delivery in batch:
            message = delivery.message
            event = message.event
            if event is None:
                continue
            if message.execution_id is not None and message.execution_id != state.execution_id:
                self.stats.dropped += 1
                continue
            if isinstance(event, ExecutionStarted) and session.status is not (
                OrchestrationRuntimeStatus.Pending
            ):
                # A start message delivered again (a duplicate, or redelivered after a
                # crash): what the step it started sent may be lost.
                redelivered = True
                continue
            if isinstance(event, _ONCE_ONLY):
                if message.message_id in state.applied_ids or message.message_id in applied:
                    continue
                applied.append(message.message_id)
            events.append(event)

        if state.status.is_terminal or not events:
            if redelivered:
                await self._repair(state, session)
            return _LocalWork()

        now = self.clock()
        step_events = [OrchestratorStarted(-1, now), *events]
        result = await self.steps.run(
            instance_id, session, functools.partial(session.step, step_events)
        )
        self.stats.steps += 1
        self.stats.events += len(events)
        if len(result.new_events) <= 1 and not applied:
            if result.dropped_events and self._cache.get(instance_id) is entry:
                # A cached session behind storage (another process committed since) takes
                # the results of work it has not seen for duplicates: ask storage once.
                raise _StaleCache
            # Every event was a duplicate of one already committed: nothing to write.
            if redelivered:
                await self._repair(state, session)
            return _LocalWork()

        history = list(result.new_events)
        work = _LocalWork()
        if guarded:
            result = await self._fold_local_steps(
                state, session, result, history, work, creating=entry.creating
            )
            now = self.clock()
        after = replace(
            state,
            status=result.status,
            updated_at=now,
            custom_status=result.custom_status,
            output=result.output,
            failure=result.failure,
            steps=state.steps + 1,
            applied_ids=[*state.applied_ids, *applied][-200:],
        )
        next_events: list[HistoryEvent] = []
        next_session: OrchestrationSession | None = None
        next_result: ExecutionResult | None = None
        continued = next((a for a in result.actions if isinstance(a, ContinueAsNewAction)), None)
        if continued is not None:
            next_session, next_result, next_events, after = await self._continue_as_new(
                state, after, continued, now
            )
        # The execution going on after this commit (the new one, after continue-as-new).
        live_session, actions = session, result.actions
        if next_session is not None and next_result is not None:
            live_session, actions = next_session, next_result.actions
        due = live_session.earliest_open_timer()
        staying = self._staying_local(actions, timer_open=due is not None)
        after = replace(after, wake_at=self._wake_at(due, staying, work, row_guarded, now))
        new_state = await self.hub.commit(state, after, history, next_generation_events=next_events)
        self.mailbox.committed(new_state)
        if entry.creating:
            self._seeds.pop(instance_id, None)
        for delivery in batch:
            if delivery.committed is not None and not delivery.committed.done():
                delivery.committed.set_result(new_state)
        self._remember(instance_id, _Cached(new_state, live_session))
        self._carry_out_later(new_state, actions, staying, now, work)
        if live_session is not session:
            self._spawn(self._forget_generation(instance_id, state.generation))
        if redelivered:
            await self._repair(new_state, live_session)
        return work

    def _wake_at(
        self,
        due: datetime | None,
        staying: list[ScheduleActivity],
        work: _LocalWork,
        row_guarded: bool,
        now: datetime,
    ) -> datetime | None:
        """When the sweeper should wake the instance if this process has died meanwhile.

        Work left to this process with no queue message behind it is guarded by the state
        row: local activities of a local start (`local_guard` from now), and every near
        timer, which fires only in the process that scheduled it (`local_guard` after it
        is due; `due` is the earliest open timer's). The commit that moves the instance on
        recomputes it.
        """
        wake_at: datetime | None = None
        if row_guarded and (work.running or staying):
            wake_at = now + self.local_guard
        if due is not None and due - now <= self.local_timer_horizon:
            # Not from now: commits by processes that do not hold the timer must not keep
            # pushing its guard back. One already past makes the next sweep wake the instance.
            timer_guard = due + self.local_guard
            wake_at = timer_guard if wake_at is None else min(wake_at, timer_guard)
        return wake_at

    async def _continue_as_new(
        self,
        state: InstanceState,
        after: InstanceState,
        action: ContinueAsNewAction,
        now: datetime,
    ) -> tuple[OrchestrationSession, ExecutionResult, list[HistoryEvent], InstanceState]:
        execution_id = uuid.uuid4().hex
        started = ExecutionStarted(
            -1,
            now,
            name=state.name,
            instance_id=state.instance_id,
            input=action.input,
            version=action.version,
            parent=state.parent,
            execution_id=execution_id,
        )
        session = self._new_session(state.instance_id)
        first = [OrchestratorStarted(-1, now), started, *action.carryover_events]
        result = await self.steps.run(
            state.instance_id, session, functools.partial(session.step, first)
        )
        new_state = replace(
            after,
            status=result.status,
            input=action.input,
            output=result.output,
            failure=result.failure,
            custom_status=result.custom_status,
            execution_id=execution_id,
            generation=state.generation + 1,
            steps=1,
        )
        return session, result, list(result.new_events), new_state

    async def _forget_generation(self, instance_id: str, generation: int) -> None:
        try:
            await self.hub.delete_generation(instance_id, generation)
        except Exception:  # best effort: purge removes leftovers
            log.warning("could not delete old history", extra={"instance_id": instance_id})

    # -- messages implied by a step -------------------------------------------------------
    def _carry_out_later(
        self,
        state: InstanceState,
        actions: tuple[Action, ...] | list[Action],
        staying: list[ScheduleActivity],
        now: datetime,
        work: _LocalWork,
    ) -> None:
        """Keep the activities `staying` local (into `work.messages`) and start sending the
        rest (into `work.sends`), without waiting for the sends."""
        if staying:
            work.messages.extend(_activity_messages(state, staying))
            actions = [a for a in actions if not isinstance(a, ScheduleActivity)]
        if actions:
            work.sends.append(asyncio.ensure_future(self._carry_out(state, actions, now)))

    async def _carry_out(
        self,
        state: InstanceState,
        actions: tuple[Action, ...] | list[Action],
        now: datetime,
    ) -> None:
        """Send what the actions imply (a wide fan-out's activities in batches)."""
        activities = [a for a in actions if isinstance(a, ScheduleActivity)]
        items: list[Action | WorkItem] = [a for a in actions if not isinstance(a, ScheduleActivity)]
        items += pack_activities(_activity_messages(state, activities)) if activities else []

        async def send(item: Action | WorkItem) -> None:
            if isinstance(item, (ActivityMessage, ActivityBatch)):
                await self.hub.send_activity(item)
            else:
                await self._send_action(state, item, now)

        await self._send_all(state.instance_id, items, send)

    async def _send_all(
        self, instance_id: str, items: Sequence[T], send: Callable[[T], Awaitable[None]]
    ) -> None:
        """Send every item, each retried while storage is unreachable (receivers tolerate a
        duplicate), a bounded number at once. If some still fail, say so with the
        instance id, ask for a repair, and raise: the step's trigger message (if any) comes
        back and its worker re-sends the open work; otherwise the sweeper does."""
        if not items:
            return

        async def patiently(item: T) -> None:
            patience = _OutagePatience(self.send_patience)
            while True:
                try:
                    await send(item)
                    return
                except StorageError as error:
                    await patience.wait(error)
                    self.stats.outage_retries += 1

        failures = await run_bounded(items, patiently, self.send_concurrency)
        if not failures:
            return
        self.stats.unsent += len(failures)
        log.error(
            "%d of %d message(s) of a step could not be sent (%s: %s); the instance will be "
            "repaired by re-sending its open work",
            len(failures),
            len(items),
            type(failures[0]).__name__,
            failures[0],
            extra={"instance_id": instance_id, "event": "send_failed"},
        )
        self._spawn(self._request_repair(instance_id))
        raise failures[0]

    async def _request_repair(self, instance_id: str, delay: timedelta = REPAIR_DELAY) -> None:
        """A wake-up soon, so that the instance's open work is sent again (best effort: if
        this fails too, the quiet-instance sweep repairs it after `repairAfter`)."""
        try:
            await self.hub.send_control(ControlMessage(instance_id, None, None), delay)
        except Exception as error:
            log.warning(
                "could not ask for a repair (%s); the sweeper will wake the instance",
                error,
                extra={"instance_id": instance_id, "event": "repair_request_failed"},
            )

    def _staying_local(
        self, actions: tuple[Action, ...] | list[Action], *, timer_open: bool
    ) -> list[ScheduleActivity]:
        """The activities among `actions` this process would run itself (all or none).

        None while a timer is open: a step's local activities hold the instance's later
        deliveries until they finish, and a timeout racing an activity must fire on time.
        """
        if self.local_runner is None or timer_open:
            return []
        activities = [a for a in actions if isinstance(a, ScheduleActivity)]
        if len(activities) > self.local_batch or any(
            a.name not in self.registry.activities for a in activities
        ):
            return []
        return activities

    async def _send_action(self, state: InstanceState, action: Action, now: datetime) -> None:
        hub = self.hub
        instance_id, execution_id = state.instance_id, state.execution_id
        # Activities go out through _carry_out, packed into work items.
        if isinstance(action, CreateTimer):
            event = TimerFired(-1, action.fire_at, action.id, action.fire_at)
            message = ControlMessage(
                instance_id, event, execution_id, f"{execution_id}:timer:{action.id}"
            )
            delay = action.fire_at - now
            if delay <= self.local_timer_horizon:
                self._fire_locally(message, action.fire_at)
            elif delay <= MAX_QUEUE_DELAY:
                await hub.send_control(message, delay)
            else:
                await hub.store_far_timer(message, action.fire_at)
        elif isinstance(action, StartSubOrchestration):
            try:
                await hub.create_instance(
                    action.name,
                    action.instance_id,
                    action.input,
                    now=now,
                    version=action.version,
                    parent=ParentInstance(instance_id, state.name, action.id),
                    execution_id=uuid.uuid4().hex,
                    message_id=f"{execution_id}:sub:{action.id}",
                )
            except InstanceExistsError as error:
                failure = FailureDetails("InstanceExistsError", str(error))
                await hub.send_control(
                    ControlMessage(
                        instance_id,
                        SubOrchestrationInstanceFailed(-1, now, action.id, failure),
                        execution_id,
                    )
                )
        elif isinstance(action, SendEvent):
            await hub.send_control(
                ControlMessage(
                    action.instance_id,
                    EventRaised(-1, now, action.name, action.input),
                    None,
                    f"{instance_id}:{execution_id}:event:{action.id}",
                )
            )
        elif isinstance(action, CompleteOrchestration) and state.parent is not None:
            parent = state.parent
            done: HistoryEvent
            if action.status is OrchestrationRuntimeStatus.Completed:
                done = SubOrchestrationInstanceCompleted(
                    -1, now, parent.task_scheduled_id, action.result
                )
            else:
                failure = action.failure or FailureDetails(
                    action.status.value,
                    f"Sub-orchestration {state.name!r} was {action.status.value.lower()}: "
                    f"{serialization.loads(action.result)}",
                )
                done = SubOrchestrationInstanceFailed(-1, now, parent.task_scheduled_id, failure)
            await hub.send_control(ControlMessage(parent.instance_id, done, None))

    def _local_activities(
        self, state: InstanceState, session: OrchestrationSession, result: ExecutionResult
    ) -> list[ActivityMessage] | None:
        """The step's activities, if they are all it asks for and may run in this process."""
        if result.is_done or not all(isinstance(a, ScheduleActivity) for a in result.actions):
            return None
        timer_open = session.earliest_open_timer() is not None
        staying = self._staying_local(result.actions, timer_open=timer_open)
        return _activity_messages(state, staying) if staying else None

    async def _run_local(self, message: ActivityMessage) -> HistoryEvent:
        """Run an activity in this process; note that it came back (did not kill us)."""
        assert self.local_runner is not None
        outcome = await self.local_runner(message)
        self._proven.add(message.name)
        return outcome

    async def _fold_local_steps(
        self,
        state: InstanceState,
        session: OrchestrationSession,
        result: ExecutionResult,
        history: list[HistoryEvent],
        work: _LocalWork,
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
        loop = asyncio.get_running_loop()
        budget = self.local_start_seconds if creating else self.local_group_seconds
        deadline = loop.time() + budget
        for _round in range(self.local_group_steps):
            messages = self._local_activities(state, session, result)
            if self.local_runner is None or messages is None or loop.time() > deadline:
                break
            if creating and any(m.name not in self._proven for m in messages):
                break
            self.stats.local_activities += len(messages)
            tasks = [asyncio.ensure_future(self._run_local(m)) for m in messages]
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

    async def _blocked_too_often(
        self, instance_id: str, error: OrchestratorBlockedError, creating: bool
    ) -> bool:
        """Count a blocked step; at `blocked_limit` the instance fails (True), else the step
        fails and its delivery is retried (its message comes back, or a repair)."""
        count = self._blocked.get(instance_id, (0, error))[0] + 1
        self._blocked[instance_id] = (count, error)
        if count < self.blocked_limit or creating:
            return False
        self._blocked.pop(instance_id, None)
        await self.fail_instance(instance_id, self._blocked_failure(count, error))
        return True

    @staticmethod
    def _blocked_failure(count: int, error: OrchestratorBlockedError) -> FailureDetails:
        message = f"Its steps blocked {count} time(s). {error}"
        return FailureDetails("OrchestratorBlockedError", message, error.stack)

    def failure_of_blocked(self, instance_id: str) -> FailureDetails | None:
        """Why the instance's steps failed here, if they blocked (for a poisoned message)."""
        blocked = self._blocked.pop(instance_id, None)
        return self._blocked_failure(*blocked) if blocked is not None else None

    async def fail_instance(self, instance_id: str, failure: FailureDetails) -> bool:
        """End a running instance as Failed without running its code (a poisoned message)."""
        self._cache.pop(instance_id, None)
        for _attempt in range(MAX_COMMIT_ATTEMPTS):
            state = await self.hub.read_state(instance_id)
            if state is None or state.status.is_terminal:
                return False
            now = self.clock()
            completion = CompleteOrchestration(-1, OrchestrationRuntimeStatus.Failed, None, failure)
            events: list[HistoryEvent] = [
                OrchestratorStarted(-1, now),
                ExecutionCompleted(-1, now, OrchestrationRuntimeStatus.Failed, None, failure),
            ]
            after = replace(
                state,
                status=OrchestrationRuntimeStatus.Failed,
                failure=failure,
                output=None,
                updated_at=now,
                steps=state.steps + 1,
            )
            try:
                new_state = await self.hub.commit(state, after, events)
                self.mailbox.committed(new_state)
            except ConcurrencyError:
                continue
            log.error(
                "instance failed: %s",
                failure.message,
                extra={"instance_id": instance_id, "event": "poison"},
            )
            await self._carry_out(new_state, [completion], now)
            return True
        return False

    def _fire_locally(self, message: ControlMessage, fire_at: datetime) -> None:
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
        delivery = _Delivery(message, 1, asyncio.get_running_loop().create_future(), durable=False)
        self._enqueue(delivery)
        self._spawn(self._after_fire(message, delivery.done))

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

    async def _repair(self, state: InstanceState, session: OrchestrationSession) -> None:
        """A message came back: whatever its worker should have sent, send again."""
        if state.status is OrchestrationRuntimeStatus.Pending:
            await self.hub.resend_start(state)
        elif state.status.is_terminal:
            if state.parent is not None:
                completion = CompleteOrchestration(-1, state.status, state.output, state.failure)
                await self._carry_out(state, [completion], self.clock())
        else:
            await self._resend_open_work(state, session)

    async def _resend_open_work(self, state: InstanceState, session: OrchestrationSession) -> None:
        """Re-send every message of work still open: a previous worker may have died first."""
        actions = session.open_actions()
        if not actions:
            return
        self.stats.resends += len(actions)
        log.info(
            "re-sending %d open work item(s)",
            len(actions),
            extra={"instance_id": state.instance_id, "event": "resend"},
        )
        await self._carry_out(state, actions, self.clock())
