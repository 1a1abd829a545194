"""The orchestrator worker: turns control messages into committed orchestrator steps.

It sequences the parts of this package: arrivals wait in the `Inbox` and are stepped
together; the `SessionCache` gives the instance's live session (or its state is loaded and
replayed); `plan` decides what the step applies and what it commits; the step runs in the
`StepRunner`'s watched threads; the commit is conditional on the state row's ETag (a 412
means another worker moved on: drop the cache, re-run from storage); the `Outbox` sends what
the step implies; `LocalActivities` and `LocalTimers` do the work this process keeps.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestration.azure import StorageError
from orchestration.core.actions import (
    Action,
    CompleteOrchestration,
    ContinueAsNewAction,
    ScheduleActivity,
)
from orchestration.core.entities import is_entity_instance
from orchestration.core.executor import ExecutionResult, OrchestrationSession
from orchestration.core.history import (
    ExecutionCompleted,
    FailureDetails,
    HistoryEvent,
    OrchestratorStarted,
)
from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.functions.orchestrator import observe, plan
from orchestration.functions.orchestrator.cache import Cached, SessionCache
from orchestration.functions.orchestrator.entities import EntityWorker
from orchestration.functions.orchestrator.inbox import Arrival, Inbox
from orchestration.functions.orchestrator.local import (
    LocalActivities,
    LocalRunner,
    LocalTimers,
    LocalWork,
    runs_of,
)
from orchestration.functions.orchestrator.options import WorkerOptions
from orchestration.functions.orchestrator.sending import (
    OutagePatience,
    Outbox,
    activity_messages,
)
from orchestration.functions.orchestrator.stats import WorkerStats
from orchestration.functions.orchestrator.versions import VersionGate, VersionMismatchError
from orchestration.functions.registry import Registry
from orchestration.functions.step_runner import OrchestratorBlockedError, StepRunner
from orchestration.storage.hub import (
    ConcurrencyError,
    InstanceExistsError,
    InstanceState,
    TaskHub,
)
from orchestration.storage.mailbox import Mailbox
from orchestration.storage.messages import ActivityMessage, ControlMessage, pack_activities
from orchestration.telemetry import logs, tracing

log = logging.getLogger("orchestration.orchestrator")

MAX_COMMIT_ATTEMPTS = 8
BLOCKED_RETRY_DELAY = timedelta(seconds=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


class _StaleCache(Exception):
    """A cached session dropped every event of a step: it may be behind storage."""


class OrchestratorWorker:
    """Processes control messages for the instances of one task hub."""

    def __init__(
        self,
        hub: TaskHub,
        registry: Registry,
        options: WorkerOptions | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        steps: StepRunner | None = None,
        mailbox: Mailbox | None = None,
    ) -> None:
        self.hub = hub
        self.registry = registry
        self.options = options = options or WorkerOptions()
        self.clock = clock
        self.stats = WorkerStats()
        # Orchestrator code runs in threads, watched (see StepRunner); an instance whose
        # steps block `blocked_limit` times in this process ends Failed.
        self.steps = steps or StepRunner(step_limit=options.step_limit)
        # This process's commits, for the clients that wait on them (see Mailbox).
        self.mailbox = mailbox or Mailbox()
        self.cache = SessionCache(options.cache_size, options.finished_memory, options.session_idle)
        self.inbox = Inbox(self._process, self.cache)
        self.local = LocalActivities(registry, options, self.stats, self.steps, clock)
        self.timers = LocalTimers(
            hub, self.mailbox, self.stats, clock, self.inbox.put, self.inbox.spawn
        )
        self.outbox = Outbox(hub, options, self.stats, self.inbox.spawn, self.timers.fire_locally)
        # Entity operations are not replayed: like activities they may wait on I/O, so only
        # functionTimeout bounds them, in threads of their own (a slow entity never holds
        # the threads orchestrator steps run in).
        entity_steps = StepRunner(stall_limit=options.step_limit, step_limit=options.step_limit)
        self.entities = EntityWorker(
            hub, registry, options, self.stats, entity_steps, self.outbox, clock
        )
        self._blocked: dict[str, tuple[int, OrchestratorBlockedError]] = {}
        self.versions = VersionGate(options.versioning, options.version_retry_delay)

    def close(self) -> None:
        """Stop the threads orchestrator steps and entity operations run in."""
        self.steps.close()
        self.entities.steps.close()

    @property
    def local_runner(self) -> LocalRunner | None:
        """Runs an activity in this process (None: every activity goes through the queue)."""
        return self.local.runner

    @local_runner.setter
    def local_runner(self, runner: LocalRunner | None) -> None:
        self.local.runner = runner

    # -- entry points ---------------------------------------------------------------------
    async def handle(
        self, message: ControlMessage, dequeue_count: int = 1, *, durable: bool = True
    ) -> None:
        """Apply one control message; returns once its effect is committed (or dropped).

        `durable=False` for an event with no queue message held behind it: its step sends
        activities through the queue.
        """
        loop = asyncio.get_running_loop()
        arrival = Arrival(message, dequeue_count, loop.create_future(), durable)
        self.inbox.put(arrival)
        await arrival.done

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
        self.cache.seed(state)
        arrival = Arrival(message, 1, loop.create_future(), True, loop.create_future(), True)
        self.inbox.put(arrival)
        assert arrival.committed is not None
        return arrival.committed, arrival.done

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self.inbox.spawn(work)

    # -- one batch: a step, then rounds of local activities --------------------------------
    async def _load(self, instance_id: str) -> Cached | None:
        cached = self.cache.get(instance_id)
        if cached is not None:
            self.stats.cache_hits += 1
            return cached
        seed = self.cache.seed_of(instance_id)
        if seed is not None:
            return Cached(seed, self._new_session(instance_id), creating=True)
        self.stats.cache_misses += 1
        state, history = await self.hub.load(instance_id)
        if state is None:
            return None
        # A session only ever holds an instance that passed, so a cached one needs no check.
        self.versions.check(state)
        session = self._new_session(instance_id)
        await self.steps.run(instance_id, session, functools.partial(session.replay, history))
        return Cached(state, session)

    def _new_session(self, instance_id: str) -> OrchestrationSession:
        return OrchestrationSession(
            self.registry.orchestrator,
            instance_id,
            max_timer_interval=self.options.max_timer_interval,
            default_version=self.options.versioning.default_version,
        )

    async def _process(
        self, instance_id: str, batch: list[Arrival], sends: list[asyncio.Future[None]]
    ) -> None:
        """Commit the batch's step, then run local activities and commit their results."""
        if is_entity_instance(instance_id):
            await self.entities.process(instance_id, batch)
            return
        finished = self.cache.finished_execution(instance_id)
        if finished is not None and all(
            a.message.execution_id == finished and a.dequeue_count <= 1 for a in batch
        ):
            self.stats.dropped += len(batch)
            return
        options = self.options
        loop = asyncio.get_running_loop()
        deadline = loop.time() + options.local_seconds
        # Activities run here only behind a held message, and not after a crash: a message
        # seen before (dequeue count > 1) may have been killed by one of them.
        guarded = any(a.durable for a in batch) and all(a.dequeue_count <= 1 for a in batch)
        row_guarded = any(a.row_guarded for a in batch)
        for round_number in range(options.local_rounds + 1):
            work = await self._commit_step(instance_id, batch, guarded, row_guarded)
            sends.extend(work.sends)
            runner = self.local.runner
            waiting: list[tuple[ActivityMessage, Awaitable[HistoryEvent]]] = []
            to_queue: list[ActivityMessage] = []
            stay = not (
                runner is None
                or not guarded
                or round_number == options.local_rounds
                or loop.time() > deadline
            )
            for message in work.messages:
                running = work.running.get(message.task_id)
                if running is not None:  # started before the commit: it finishes here
                    waiting.append((message, running))
                elif stay and runner is not None:
                    self.stats.local_activities += 1
                    waiting.append((message, self.local.run(message)))
                else:
                    to_queue.append(message)
            if to_queue:
                self.stats.queued_activities += len(to_queue)
                await self.outbox.send_all(
                    instance_id, pack_activities(to_queue), self.hub.send_activity
                )
            if not waiting:
                return
            events = await asyncio.gather(*(outcome for _, outcome in waiting))
            batch = [
                Arrival(
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
        batch: list[Arrival],
        guarded: bool = False,
        row_guarded: bool = False,
    ) -> LocalWork:
        """Run and commit one step, retrying conflicts at once and storage outages patiently.

        Both retries are safe by construction: the commit is conditional on the ETag, so a
        retried step either commits once or finds its events already applied and drops them.
        """
        patience = OutagePatience(self.options.outage_patience)
        conflicts = 0
        while True:
            entry: Cached | None = None
            try:
                entry = await self._load(instance_id)
                if entry is None:
                    self.stats.dropped += len(batch)
                    log.warning(
                        "dropping %d message(s) for unknown instance",
                        len(batch),
                        extra={"instance_id": instance_id, "event": "unknown_instance"},
                    )
                    return LocalWork()
                work = await self._step(instance_id, entry, batch, guarded, row_guarded)
                if self._blocked:
                    self._blocked.pop(instance_id, None)
                return work
            except OrchestratorBlockedError as error:
                self.cache.drop(instance_id)
                creating = entry is not None and entry.creating
                if creating:
                    self.cache.drop_seed(instance_id)
                if await self._blocked_too_often(instance_id, error, creating):
                    return LocalWork()
                if not creating and all(a.row_guarded or not a.durable for a in batch):
                    # No queue message comes back for this step: ask for another try.
                    self._spawn(self.outbox.request_repair(instance_id, BLOCKED_RETRY_DELAY))
                # The delivery fails (a local start's: the engine then creates the instance
                # the queued way).
                raise
            except VersionMismatchError as mismatch:
                if self.versions.fails:
                    await self.fail_instance(instance_id, self.versions.failure(mismatch))
                else:
                    await self.versions.reject(self.hub, mismatch, batch)
                return LocalWork()
            except _StaleCache:
                self.cache.drop(instance_id)
                self.stats.stale_reloads += 1
            except ConcurrencyError as error:
                self.cache.drop(instance_id)
                if entry is not None and entry.creating:
                    self.cache.drop_seed(instance_id)
                    raise InstanceExistsError(
                        f"An instance with id {instance_id!r} was created concurrently."
                    ) from error
                self.stats.conflicts += 1
                conflicts += 1
                if conflicts >= MAX_COMMIT_ATTEMPTS:
                    raise
                await asyncio.sleep(0.005 * conflicts)
            except StorageError as error:
                self.cache.drop(instance_id)
                await patience.wait(error, instance_id)
                self.stats.outage_retries += 1
            except BaseException:
                self.cache.drop(instance_id)
                raise

    async def _step(
        self,
        instance_id: str,
        entry: Cached,
        batch: list[Arrival],
        guarded: bool = False,
        row_guarded: bool = False,
    ) -> LocalWork:
        """One step; returns the activities this process should run itself."""
        started_ns = time.time_ns()
        state, session = entry.state, entry.session
        if state.trace is None and state.steps == 0 and state.parent is None:
            # Created by a process that was not tracing (the CLI, another app): if this one
            # traces, the instance starts a trace of its own.
            link = tracing.root_link()
            if link is not None:
                state = replace(state, trace=link.encode())
        logs.follow_instance(state.trace)
        admitted = plan.admit(batch, state, session.status)
        self.stats.dropped += admitted.dropped
        events, applied = admitted.events, admitted.applied
        if state.status.is_terminal or not events:
            if admitted.redelivered:
                await self._repair(state, session)
            return LocalWork()

        now = self.clock()
        step_events = [OrchestratorStarted(-1, now), *events]
        result = await self.steps.run(
            instance_id, session, functools.partial(session.step, step_events)
        )
        self.stats.steps += 1
        self.stats.events += len(events)
        if len(result.new_events) <= 1 and not applied:
            if result.dropped_events and self.cache.is_current(instance_id, entry):
                # A cached session behind storage (another process committed since) takes
                # the results of work it has not seen for duplicates: ask storage once.
                raise _StaleCache
            # Every event was a duplicate of one already committed: nothing to write.
            if admitted.redelivered:
                await self._repair(state, session)
            return LocalWork()

        history = list(result.new_events)
        work = LocalWork()
        if guarded:
            result = await self.local.fold(
                state, session, result, history, work, creating=entry.creating
            )
            now = self.clock()
        after = plan.next_state(state, result, applied, now)
        next_events: list[HistoryEvent] = []
        next_session: OrchestrationSession | None = None
        next_result: ExecutionResult | None = None
        continued_from: InstanceState | None = None  # the execution continue-as-new ends
        continued = plan.continued_as_new(result)
        if continued is not None:
            continued_from = after
            next_session, next_result, next_events, after = await self._continue_as_new(
                state, after, continued, now
            )
        # The execution going on after this commit (the new one, after continue-as-new).
        live_session, actions = session, result.actions
        if next_session is not None and next_result is not None:
            live_session, actions = next_session, next_result.actions
        due = live_session.earliest_open_timer()
        staying = self.local.staying(actions, timer_open=due is not None)
        wake = plan.wake_at(
            due,
            bool(work.running or staying),
            row_guarded,
            now,
            guard=self.options.local_guard,
            timer_horizon=self.options.local_timer_horizon,
        )
        after = replace(after, wake_at=wake)
        new_state = await self.hub.commit(state, after, history, next_generation_events=next_events)
        observe.step_committed(state, new_state, history, started_ns, continued_from, now)
        self.mailbox.committed(new_state)
        if entry.creating:
            self.cache.drop_seed(instance_id)
        for arrival in batch:
            if arrival.committed is not None and not arrival.committed.done():
                arrival.committed.set_result(new_state)
        self.cache.remember(instance_id, Cached(new_state, live_session))
        self._carry_out_later(new_state, actions, staying, now, work)
        if live_session is not session:
            self._spawn(self._forget_generation(instance_id, state.generation))
        if admitted.redelivered:
            await self._repair(new_state, live_session)
        return work

    async def _continue_as_new(
        self,
        state: InstanceState,
        after: InstanceState,
        action: ContinueAsNewAction,
        now: datetime,
    ) -> tuple[OrchestrationSession, ExecutionResult, list[HistoryEvent], InstanceState]:
        execution_id = uuid.uuid4().hex
        session = self._new_session(state.instance_id)
        first = plan.new_execution_start(state, action, execution_id, now)
        result = await self.steps.run(
            state.instance_id, session, functools.partial(session.step, first)
        )
        new_state = plan.new_execution_state(after, state, result, action, execution_id)
        return session, result, list(result.new_events), new_state

    async def _forget_generation(self, instance_id: str, generation: int) -> None:
        try:
            await self.hub.delete_generation(instance_id, generation)
        except Exception:  # best effort: purge removes leftovers
            log.warning("could not delete old history", extra={"instance_id": instance_id})

    def _carry_out_later(
        self,
        state: InstanceState,
        actions: tuple[Action, ...] | list[Action],
        staying: list[ScheduleActivity],
        now: datetime,
        work: LocalWork,
    ) -> None:
        """Keep the activities `staying` local (into `work.messages`) and start sending the
        rest (into `work.sends`), without waiting for the sends. `staying` is all of the
        step's activities or none."""
        if staying:
            work.messages.extend(activity_messages(state, runs_of(staying)))
            actions = [a for a in actions if not isinstance(a, ScheduleActivity)]
        if actions:
            work.sends.append(asyncio.ensure_future(self.outbox.carry_out(state, actions, now)))

    # -- instances that cannot go on --------------------------------------------------------
    async def _blocked_too_often(
        self, instance_id: str, error: OrchestratorBlockedError, creating: bool
    ) -> bool:
        """Count a blocked step; at `blocked_limit` the instance fails (True), else the step
        fails and its delivery is retried (its message comes back, or a repair)."""
        count = self._blocked.get(instance_id, (0, error))[0] + 1
        self._blocked[instance_id] = (count, error)
        if count < self.options.blocked_limit or creating:
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
        self.cache.drop(instance_id)
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
            observe.execution_ended(new_state, now)
            log.error(
                "instance failed: %s",
                failure.message,
                extra={"instance_id": instance_id, "event": "poison"},
            )
            await self.outbox.carry_out(new_state, [completion], now)
            return True
        return False

    # -- repair -------------------------------------------------------------------------------
    async def _repair(self, state: InstanceState, session: OrchestrationSession) -> None:
        """A message came back: whatever its worker should have sent, send again."""
        if state.status is OrchestrationRuntimeStatus.Pending:
            await self.hub.resend_start(state)
        elif state.status.is_terminal:
            resend: list[Action] = session.entity_requests_to_resend()
            if state.parent is not None:
                completion = CompleteOrchestration(-1, state.status, state.output, state.failure)
                resend.append(completion)
            if resend:
                await self.outbox.carry_out(state, resend, self.clock())
        else:
            await self._resend_open_work(state, session)

    async def _resend_open_work(self, state: InstanceState, session: OrchestrationSession) -> None:
        """Re-send every message of work still open: a previous worker may have died first."""
        actions = [*session.open_actions(), *session.entity_requests_to_resend()]
        if not actions:
            return
        self.stats.resends += len(actions)
        log.info(
            "re-sending %d open work item(s)",
            len(actions),
            extra={"instance_id": state.instance_id, "event": "resend"},
        )
        await self.outbox.carry_out(state, actions, self.clock())
