"""The entity worker: turns an entity's operation requests into committed batches.

The orchestrator worker's inbox hands it every batch of arrivals for an entity's instance
(`@name@key`), so one entity's batches run one at a time in a process, and the state row's
ETag makes them one at a time across processes. A batch: the requests that may be copies
(seen before on the queue, or sent again by a repair) are looked up among the entity's
recent batches (a copy of one that ran gets that batch's messages sent again); `order` puts
each sender's requests in order; the operations run in the StepRunner's watched thread; the
new snapshot, the batch's row and its messages commit in one transaction; then the messages
(answers to callers, signals to entities) are sent, before the arrivals are done (and their
queue messages deleted), so a crash at any line sends them again and runs nothing twice.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from orchestration.azure import StorageError
from orchestration.core.entities import (
    REORDER_WINDOW,
    EntityBatch,
    EntityMessage,
    EntitySnapshot,
    OperationRequest,
    entity_id_of,
    is_entity_request,
    mark_possible_duplicates,
    order,
    requests_of,
)
from orchestration.core.history import EventRaised, FailureDetails
from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.functions.orchestrator.inbox import Arrival
from orchestration.functions.orchestrator.options import WorkerOptions
from orchestration.functions.orchestrator.sending import OutagePatience, Outbox
from orchestration.functions.orchestrator.stats import WorkerStats
from orchestration.functions.registry import Registry
from orchestration.functions.step_runner import StepRunner
from orchestration.storage.entities import (
    EntityStore,
    applied_row_key,
    batch_of,
    new_entity_state,
    request_key,
)
from orchestration.storage.hub import ConcurrencyError, InstanceState, TaskHub
from orchestration.storage.messages import ControlMessage

log = logging.getLogger("orchestration.entities")

MAX_COMMIT_ATTEMPTS = 16
RECENT_KEYS = 5000  # request keys of this process's recent batches, per entity
MAX_BATCH = 500  # requests per commit


class RecentKeys:
    """The request keys of an entity's latest batches committed here (the newest `size`)."""

    def __init__(self, size: int = RECENT_KEYS) -> None:
        self._order: deque[str] = deque()
        self._keys: set[str] = set()
        self._size = size

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def extend(self, keys: Iterable[str]) -> None:
        for key in keys:
            if key in self._keys:
                continue
            self._order.append(key)
            self._keys.add(key)
            if len(self._order) > self._size:
                self._keys.discard(self._order.popleft())


@dataclass
class _Entry:
    state: InstanceState
    snapshot: EntitySnapshot
    recent: RecentKeys = field(default_factory=RecentKeys)
    pruned_at: datetime | None = None


class EntityWorker:
    """Runs and commits batches of entity operations."""

    def __init__(
        self,
        hub: TaskHub,
        registry: Registry,
        options: WorkerOptions,
        stats: WorkerStats,
        steps: StepRunner,
        outbox: Outbox,
        clock: Callable[[], datetime],
        window: timedelta = REORDER_WINDOW,
    ) -> None:
        self.hub = hub
        self.store = EntityStore(hub)
        self.registry = registry
        self.options = options
        self.stats = stats
        self.steps = steps
        self.outbox = outbox
        self.clock = clock
        self.window = window
        self.operations = 0
        self.batches = 0
        self._cache: OrderedDict[str, _Entry] = OrderedDict()

    # -- one batch of arrivals ------------------------------------------------------------
    async def process(
        self,
        instance_id: str,
        arrivals: list[Arrival],
        refused: dict[str, FailureDetails] | None = None,
    ) -> None:
        """Apply the arrivals' requests; returns once committed and their messages sent.

        The requests `refused` names (by id) are not run: they fail with that failure. At
        most MAX_BATCH requests go into one commit (its row lists their ids); a message
        may carry many (`@ops`), so the cut is by request. The arrivals are done when
        every part is committed and sent (a crash between parts brings them all back)."""
        requests, suspect = self._requests(arrivals)
        for start in range(0, max(len(requests), 1), MAX_BATCH):
            part = requests[start : start + MAX_BATCH]
            await self._process(instance_id, part, suspect, refused or {})

    async def _process(
        self,
        instance_id: str,
        requests: list[OperationRequest],
        suspect: set[str],
        refused: dict[str, FailureDetails],
    ) -> None:
        patience = OutagePatience(self.options.outage_patience)
        conflicts = 0
        while True:
            try:
                messages = await self._commit(instance_id, requests, suspect, refused)
                break
            except ConcurrencyError:
                self._cache.pop(instance_id, None)
                self.stats.conflicts += 1
                conflicts += 1
                if conflicts >= MAX_COMMIT_ATTEMPTS:
                    raise
                await asyncio.sleep(0.002 * conflicts)
            except StorageError as error:
                self._cache.pop(instance_id, None)
                await patience.wait(error, instance_id)
                self.stats.outage_retries += 1
            except BaseException:
                self._cache.pop(instance_id, None)
                raise
        await self.send(instance_id, messages)

    async def _load(self, instance_id: str) -> _Entry:
        entry = self._cache.get(instance_id)
        if entry is not None:
            self._cache.move_to_end(instance_id)
            self.stats.cache_hits += 1
            return entry
        self.stats.cache_misses += 1
        state = await self.hub.read_state(instance_id)
        if state is None:
            return _Entry(new_entity_state(instance_id, self.clock()), EntitySnapshot())
        return _Entry(state, await self.store.snapshot_of(state))

    def _requests(self, arrivals: list[Arrival]) -> tuple[list[OperationRequest], set[str]]:
        """The arrivals' requests, and the ids of those that may be copies."""
        requests: list[OperationRequest] = []
        suspect: set[str] = set()
        for arrival in arrivals:
            event = arrival.message.event
            if not isinstance(event, EventRaised) or not is_entity_request(event.name):
                if event is not None:
                    self.stats.dropped += 1
                continue
            try:
                carried = requests_of(event.name, event.input)
            except ValueError as error:
                self.stats.dropped += 1
                log.warning(
                    "dropping a message that is not an operation request: %s",
                    error,
                    extra={"instance_id": arrival.message.instance_id, "event": "bad_request"},
                )
                continue
            for request in carried:
                requests.append(request)
                if arrival.dequeue_count > 1 or request.possible_duplicate:
                    suspect.add(request.id)
        return requests, suspect

    async def _commit(
        self,
        instance_id: str,
        requests: list[OperationRequest],
        suspect: set[str],
        refused: dict[str, FailureDetails],
    ) -> list[EntityMessage]:
        entry = await self._load(instance_id)
        suspect = {r.id for r in requests if r.id in suspect}
        resend: dict[str, EntityMessage] = {}
        fresh: list[OperationRequest] = []
        seen = entry.recent
        taken: set[str] = set()
        ran_before: dict[str, tuple[EntityMessage, ...]] = {}
        if suspect:
            # A copy of a request that ran: its batch's messages may not all have gone out.
            for applied in await self.store.applied(instance_id):
                for key in applied.request_keys:
                    ran_before[key] = applied.messages
        for request in requests:
            key = request_key(request.id)
            if key in seen or key in taken:
                self.stats.dropped += 1
                continue
            if key in ran_before:
                self.stats.dropped += 1
                for message in ran_before[key]:
                    resend.setdefault(message.message_id, mark_possible_duplicate(message))
                taken.add(key)
                continue
            taken.add(key)
            fresh.append(request)
        now = self.clock()
        snapshot = entry.snapshot.copy()
        held_before = len(snapshot.early)
        ready = order(snapshot, fresh, now, self.window)
        if not ready and len(snapshot.early) == held_before:
            return [*resend.values()]  # nothing ran and nothing new is held back
        entity = entity_id_of(instance_id)
        function = self.registry.entity(entity.name)
        batch = EntityBatch(entity, function)
        outcome = await self.steps.run(
            instance_id, batch, functools.partial(batch.run, snapshot, ready, now, refused)
        )
        state = entry.state
        after = replace(
            state,
            status=OrchestrationRuntimeStatus.Running,
            input=outcome.snapshot.to_json(),
            updated_at=now,
            steps=state.steps + 1,
            wake_at=outcome.snapshot.next_release(self.window),
            next_repair_at=None,
            repairs=0,
        )
        forget: list[tuple[str, str | None]] = []
        if entry.pruned_at is None or now - entry.pruned_at > self.window / 10:
            forget = await self.store.expired(instance_id, now, self.window)
        row_key = applied_row_key(now, outcome.snapshot.batches)
        applied = batch_of(row_key, [r.id for r in ready], outcome.messages)
        committed = await self.store.commit(state, after, applied, forget)
        if forget or entry.pruned_at is None:
            entry.pruned_at = now
        entry.state, entry.snapshot = committed, outcome.snapshot
        entry.recent.extend(request_key(r.id) for r in ready)
        self._remember(instance_id, entry)
        self.operations += len(ready)
        self.batches += 1
        self.stats.steps += 1
        self.stats.events += len(ready)
        failed = [o for o in outcome.outcomes if o.failure is not None]
        for failure in failed[:3]:
            assert failure.failure is not None
            log.info(
                "entity operation %r failed: %s",
                failure.request.operation,
                failure.failure.describe(),
                extra={"instance_id": instance_id, "event": "entity_operation_failed"},
            )
        return [*outcome.messages, *resend.values()]

    def _remember(self, instance_id: str, entry: _Entry) -> None:
        self._cache[instance_id] = entry
        self._cache.move_to_end(instance_id)
        while len(self._cache) > self.options.cache_size:
            self._cache.popitem(last=False)

    # -- messages -----------------------------------------------------------------------
    async def send(self, instance_id: str, messages: list[EntityMessage]) -> None:
        """Send a batch's messages (answers and signals), patiently."""
        now = self.clock()

        async def send_one(message: EntityMessage) -> None:
            event = EventRaised(-1, now, message.event_name, message.input)
            await self.hub.send_control(
                ControlMessage(message.instance_id, event, message.execution_id, message.message_id)
            )

        await self.outbox.send_all(instance_id, messages, send_one)

    async def refuse(self, message: ControlMessage, attempts: int, reason: str) -> None:
        """A request that could not be processed (poisoned): it fails without running, in
        its turn (its sender's later requests then run), and a waiting caller is told why."""
        self._cache.pop(message.instance_id, None)
        event = message.event
        if not isinstance(event, EventRaised) or not is_entity_request(event.name):
            return
        try:
            requests = requests_of(event.name, event.input)
        except ValueError:
            return
        for request in requests:
            log.error(
                "entity operation %r dropped: %s",
                request.operation,
                reason,
                extra={"instance_id": message.instance_id, "event": "poison"},
            )
        arrival = Arrival(message, attempts, asyncio.get_running_loop().create_future())
        failure = FailureDetails("PoisonMessageError", reason)
        await self.process(message.instance_id, [arrival], {r.id: failure for r in requests})


def mark_possible_duplicate(message: EntityMessage) -> EntityMessage:
    """A signal sent again: the receiving entity looks it up before running it."""
    if not is_entity_request(message.event_name):
        return message
    return replace(message, input=mark_possible_duplicates(message.event_name, message.input))
