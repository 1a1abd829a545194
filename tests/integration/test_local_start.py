"""A client in the engine's process: local starts, commit-woken waits, cheap late duplicates.

A starter in the host (HTTP starter, `durable_client_input`) runs a new instance's first step
itself: the step's commit creates the instance, and while the instance's local work goes on
(its activities, a near timer, which fires only locally) its state row carries a wake-up time
for the timer sweeper, recomputed by every commit. Real Azurite; the engine's workers run in
this process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest

from orchestration.client import DurableOrchestrationClient
from orchestration.core import DurableOrchestrationContext, OrchestrationRuntimeStatus
from orchestration.core.history import HistoryEvent, TimerFired
from orchestration.functions.burst import BurstWorker
from orchestration.functions.engine import Engine
from orchestration.functions.registry import Registry
from orchestration.functions.settings import EngineSettings
from orchestration.functions.triggers import sweep
from orchestration.storage.hub import InstanceExistsError, TaskHub
from orchestration.storage.messages import ActivityMessage, ControlMessage
from tests.conftest import Storage

Context = DurableOrchestrationContext


def chain(ctx: Context) -> Any:
    value = ctx.get_input()
    for _ in range(3):
        value = yield ctx.call_activity("add_one", value)
    return value


def approval(ctx: Context) -> Any:
    answer = yield ctx.wait_for_external_event("approved")
    return f"approved by {answer}"


def nap(ctx: Context) -> Any:
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=1))
    return "rested"


def deadline(ctx: Context) -> Any:
    work = ctx.call_activity("slow_echo", "finished")
    timeout = ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=0.5))
    winner = yield ctx.task_any([work, timeout])
    return work.result if winner is work else "timed out"


def add_one(value: int) -> int:
    return value + 1


def slow_echo(value: str) -> str:
    time.sleep(3)
    return value


def registry() -> Registry:
    reg = Registry()
    for function in (chain, approval, nap, deadline):
        reg.add_orchestrator(function.__name__, function)
    reg.add_activity("add_one", add_one, "value")
    reg.add_activity("slow_echo", slow_echo, "value")
    return reg


@pytest.fixture
async def engine(hub: TaskHub) -> AsyncIterator[Engine]:
    engine = Engine(registry(), EngineSettings(hub_name=hub.names.hub), hub=hub)
    yield engine
    for task in list(engine._background):
        task.cancel()


async def settled(engine: Engine) -> None:
    """Wait until the engine's background work (a local start's later rounds) is done."""
    for _ in range(500):
        if not engine._background:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the engine's background work did not finish")


async def woken_and_finished_elsewhere(
    azurite: Storage,
    hub: TaskHub,
    client: DurableOrchestrationClient,
    instance_id: str,
    wake_at: datetime,
) -> BurstWorker:
    """Another process's timer sweeper leaves the instance alone before `wake_at` and wakes
    it after; another process's worker then finishes it. Returns that worker."""
    await sweep(hub, timedelta(minutes=5), wake_at - timedelta(seconds=1))
    assert await hub.queues.approximate_count(hub.names.control_queue) == 0
    await sweep(hub, timedelta(minutes=5), wake_at + timedelta(seconds=1))
    assert await hub.queues.approximate_count(hub.names.control_queue) == 1
    other_hub = TaskHub.from_connection_string(azurite.connection_string, hub.names.hub)
    other = BurstWorker(other_hub, registry(), visibility_timeout=5)

    async def completed() -> bool:
        current = await client.get_status(instance_id)
        return current is not None and current.runtime_status.is_terminal

    try:
        await other.run_until(completed, timeout=60, idle_sleep=0.05)
    finally:
        await other_hub.close()
    return other


async def test_a_local_start_creates_the_instance_in_one_commit_and_clears_its_guard(
    hub: TaskHub, engine: Engine
) -> None:
    client = await engine.client()
    runtime = await engine.runtime()
    release = asyncio.Event()
    run_activity = runtime.orchestrators.local_runner
    assert run_activity is not None

    async def held(message: ActivityMessage) -> HistoryEvent:
        await release.wait()
        return await run_activity(message)

    runtime.orchestrators.local_runner = held
    hub.account.reset_stats()
    instance_id = await client.start_new("chain", None, 1)
    calls = hub.account.reset_stats()
    # No read (a generated id is free), no Pending row, no message: one entity insert.
    assert calls == {"table.insert": 1}, calls
    state = await hub.read_state(instance_id)
    assert state is not None and state.status is OrchestrationRuntimeStatus.Running
    assert state.wake_at is not None and state.wake_at > datetime.now(UTC)  # work goes on here
    status = await client.get_status(instance_id, show_history=True)
    assert status is not None and status.history is not None
    assert status.history[1]["EventType"] == "ExecutionStarted"

    release.set()
    done = await client.wait_for_completion(instance_id, 30_000, 50)
    assert done is not None and done.output == 4
    await settled(engine)
    state = await hub.read_state(instance_id)
    assert state is not None and state.wake_at is None
    assert await hub.queues.approximate_count(hub.names.control_queue) == 0


async def test_activities_proven_in_this_process_run_before_the_creating_commit(
    hub: TaskHub, engine: Engine
) -> None:
    """Once `add_one` has run here and come back, a new chain's whole run fits in the one
    commit that creates it; the first chain (activity not yet proven) took two."""
    client = await engine.client()
    hub.account.reset_stats()
    first = await client.start_new("chain", None, 1)
    started = await hub.read_state(first)
    assert started is not None and started.status is OrchestrationRuntimeStatus.Running
    done = await client.wait_for_completion(first, 30_000, 50)
    assert done is not None and done.output == 4
    await settled(engine)
    hub.account.reset_stats()
    second = await client.start_new("chain", None, 10)
    assert hub.account.reset_stats() == {"table.insert": 1}
    state = await hub.read_state(second)
    assert state is not None and state.status is OrchestrationRuntimeStatus.Completed
    assert state.output == "13" and state.wake_at is None


async def test_a_local_start_waiting_for_an_event_leaves_no_wake_up_time(
    hub: TaskHub, engine: Engine
) -> None:
    client = await engine.client()
    instance_id = await client.start_new("approval")
    await settled(engine)
    state = await hub.read_state(instance_id)
    assert state is not None and state.status is OrchestrationRuntimeStatus.Running
    assert state.wake_at is None  # nothing runs here: a quiet instance, not a guarded one


async def test_a_local_start_refuses_an_id_in_use_and_replaces_a_finished_instance(
    hub: TaskHub, engine: Engine
) -> None:
    client = await engine.client()
    await client.start_new("approval", "taken")
    with pytest.raises(InstanceExistsError):
        await client.start_new("chain", "taken", 1)
    status = await client.get_status("taken")
    assert status is not None and status.name == "approval"

    await client.start_new("chain", "reused", 1)
    first = await client.wait_for_completion("reused", 30_000, 50)
    assert first is not None and first.output == 4
    await client.start_new("chain", "reused", 10)
    second = await client.wait_for_completion("reused", 30_000, 50)
    assert second is not None and second.output == 13


async def test_a_concurrent_creation_of_the_same_id_is_refused_not_merged(
    hub: TaskHub, engine: Engine
) -> None:
    client = await engine.client()
    other = DurableOrchestrationClient(hub)  # another process's client: Pending row + message
    state = await hub.new_instance(
        "chain", "raced", "1", now=datetime.now(UTC), execution_id="e1", message_id="m1"
    )
    await other.start_new("approval", "raced")  # lands between our read and our commit
    runtime = await engine.runtime()
    committed, finished = runtime.orchestrators.start(state, hub.start_message(state, "m1"))
    with pytest.raises(InstanceExistsError):
        await committed
    with pytest.raises(InstanceExistsError):
        await finished
    status = await client.get_status("raced")
    assert status is not None and status.name == "approval"


async def test_a_wait_in_the_engines_process_is_woken_by_the_commit_not_by_polling(
    hub: TaskHub, engine: Engine
) -> None:
    client = await engine.client()
    instance_id = await client.start_new("approval")
    runtime = await engine.runtime()
    worker = BurstWorker(hub, registry(), workers=runtime.workers)
    hub.account.reset_stats()
    # A poll interval longer than the test's timeout: only the commit can end this wait.
    waiting = asyncio.create_task(client.wait_for_completion(instance_id, 600_000, 600_000))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await client.raise_event(instance_id, "approved", "ana")
    await worker.run_until(lambda: asyncio.sleep(0, waiting.done()), timeout=30, idle_sleep=0.02)
    status = await asyncio.wait_for(waiting, 5)
    assert status is not None
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed
    assert status.output == "approved by ana"
    # one read of the state when the wait began; the completion came from the commit
    assert hub.account.reset_stats().get("table.get", 0) <= 2  # + raise_event's own read


async def test_a_waits_last_read_at_its_timeout_is_not_put_off_by_a_timer_due_here(
    azurite: Storage, hub: TaskHub, engine: Engine
) -> None:
    client = await engine.client()
    instance_id = await client.start_new("approval")
    # Another process finishes the instance: nothing in this process hears of it.
    other_hub = TaskHub.from_connection_string(azurite.connection_string, hub.names.hub)
    try:
        other_client = DurableOrchestrationClient(other_hub)
        await other_client.raise_event(instance_id, "approved", "bo")
        other = BurstWorker(other_hub, registry(), visibility_timeout=5)

        async def finished() -> bool:
            state = await other_hub.read_state(instance_id)
            return state is not None and state.status.is_terminal

        await other.run_until(finished, timeout=30, idle_sleep=0.02)
    finally:
        await other_hub.close()
    # A timer this process fires is due just after the wait's timeout: the read due at the
    # timeout (the only one, with this poll interval) must still be made, not put off.
    loop = asyncio.get_running_loop()
    mailbox = (await engine.runtime()).orchestrators.mailbox
    mailbox.timer_windows.expect(loop.time() + 0.3 + 0.002, loop.time())
    status = await client.wait_for_completion(instance_id, 300, 60_000)
    assert status is not None
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed
    assert status.output == "approved by bo"


async def test_a_start_and_wait_polls_storage_at_the_callers_retry_interval(
    hub: TaskHub, engine: Engine
) -> None:
    client = await engine.client()
    instance_id = await client.start_new("approval")
    request = func.HttpRequest("POST", "http://localhost/api/start", body=b"")
    hub.account.reset_stats()
    response = await client.wait_for_completion_or_create_check_status_response(
        request, instance_id, timeout_in_milliseconds=1_200, retry_interval_in_milliseconds=1_000
    )
    assert response.status_code == 202
    # None at the start (this process committed the state), one at a random point of the
    # first second, one a second later or at the timeout: at most three. A 250 ms interval
    # would read five times or more.
    assert hub.account.reset_stats().get("table.get", 0) <= 3


async def test_a_process_dying_after_the_creation_commit_is_woken_by_the_sweeper(
    azurite: Storage, hub: TaskHub, engine: Engine
) -> None:
    runtime = await engine.runtime()
    hung = asyncio.Event()

    async def dies(_message: ActivityMessage) -> HistoryEvent:
        hung.set()
        await asyncio.Event().wait()  # this process never gets further
        raise AssertionError("unreachable")

    runtime.orchestrators.local_runner = dies
    client = await engine.client()
    instance_id = await client.start_new("chain", None, 1)
    await asyncio.wait_for(hung.wait(), 10)
    status = await client.get_status(instance_id)
    assert status is not None and status.runtime_status is OrchestrationRuntimeStatus.Running

    # Another process's sweeper wakes the instance; its worker re-sends the open activity.
    state = await hub.read_state(instance_id)
    assert state is not None and state.wake_at is not None
    other = await woken_and_finished_elsewhere(azurite, hub, client, instance_id, state.wake_at)
    final = await client.get_status(instance_id)
    assert final is not None and final.output == 4
    assert other.orchestrators.stats.resends == 1


async def test_a_near_timer_is_guarded_by_the_state_row_not_by_a_queue_message(
    azurite: Storage, hub: TaskHub, engine: Engine
) -> None:
    runtime = await engine.runtime()
    never_fired: list[ControlMessage] = []
    runtime.orchestrators.timers._fire = never_fired.append  # type: ignore[method-assign]
    client = await engine.client()
    before = datetime.now(UTC)
    instance_id = await client.start_new("nap")  # a 1 s timer; this process dies before it
    await settled(engine)
    assert await hub.queues.approximate_count(hub.names.control_queue) == 0
    state = await hub.read_state(instance_id)
    assert state is not None and state.wake_at is not None
    # the timer's due time (start + 1 s) plus the 30 s guard
    assert timedelta(seconds=31) <= state.wake_at - before <= timedelta(seconds=33)
    other = await woken_and_finished_elsewhere(azurite, hub, client, instance_id, state.wake_at)
    final = await client.get_status(instance_id)
    assert final is not None and final.output == "rested"
    assert other.orchestrators.stats.local_timers == 1  # scheduled again by the repair
    assert len(never_fired) == 1
    done = await hub.read_state(instance_id)
    assert done is not None and done.wake_at is None


async def test_a_timeout_racing_an_activity_is_not_held_back_by_it(engine: Engine) -> None:
    """While a timer is open, the instance's activities go through the queue: one running in
    the orchestrating process would hold the timer's delivery until it finished."""
    client = await engine.client()
    instance_id = await client.start_new("deadline")
    done = await client.wait_for_completion(instance_id, 30_000, 100)
    assert done is not None and done.output == "timed out"


async def test_a_late_copy_of_a_finished_executions_message_is_dropped_without_a_read(
    hub: TaskHub, engine: Engine
) -> None:
    client = await engine.client()
    instance_id = await client.start_new("nap")
    done = await client.wait_for_completion(instance_id, 30_000, 50)
    assert done is not None and done.output == "rested"  # fired by the local timer
    runtime = await engine.runtime()
    state = await hub.read_state(instance_id)
    assert state is not None
    worker = runtime.orchestrators
    assert worker.stats.local_timers == 1
    assert await hub.queues.approximate_count(hub.names.control_queue) == 0  # none was sent
    # A copy that comes anyway (a redelivery, a repair's re-send) is dropped unread.
    queued_copy = ControlMessage(
        instance_id, TimerFired(-1, done.created_time, 0, done.created_time), state.execution_id
    )
    dropped = worker.stats.dropped
    hub.account.reset_stats()
    await worker.handle(queued_copy)
    assert worker.stats.dropped == dropped + 1
    assert hub.account.reset_stats() == {}  # no storage call at all
    # a copy seen before (redelivered) still goes through the full path
    await worker.handle(queued_copy, dequeue_count=2)
    assert hub.account.reset_stats().get("table.query", 0) >= 1
