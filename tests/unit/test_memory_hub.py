"""The engine's workers and client on the in-memory twin of storage: their logic, fast, with
no Azurite (storage itself is tested on Azurite, in tests/integration)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestration.azure import BatchError, Conflict, PreconditionFailed, TableOperation
from orchestration.azure.memory import MemoryQueues, MemoryTables, compile_filter
from orchestration.client import DurableOrchestrationClient
from orchestration.core import DurableOrchestrationContext, OrchestrationRuntimeStatus
from orchestration.core.history import TaskCompleted
from orchestration.functions.burst import BurstWorker
from orchestration.functions.orchestrator import OrchestratorWorker, WorkerOptions
from orchestration.functions.registry import Registry
from orchestration.storage.hub import TaskHub
from orchestration.storage.messages import ControlMessage

Context = DurableOrchestrationContext
Status = OrchestrationRuntimeStatus


def chain(ctx: Context) -> Any:
    x = ctx.get_input() or 0
    for _ in range(3):
        x = yield ctx.call_activity("add_one", x)
    return x


def fan_out(ctx: Context) -> Any:
    results = yield ctx.task_all([ctx.call_activity("add_one", i) for i in range(ctx.get_input())])
    return sum(results)


def timer_then_event(ctx: Context) -> Any:
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(milliseconds=200))
    data = yield ctx.wait_for_external_event("Go")
    return data


def parent(ctx: Context) -> Any:
    results = yield ctx.task_all([ctx.call_sub_orchestrator("chain", i) for i in range(3)])
    return results


def add_one(value: int) -> int:
    return value + 1


def registry() -> Registry:
    found = Registry()
    for function in (chain, fan_out, timer_then_event, parent):
        found.add_orchestrator(function.__name__, function)
    found.add_activity("add_one", add_one, "value")
    return found


async def run(hub: TaskHub, client: DurableOrchestrationClient, instance_id: str, **kw: Any) -> Any:
    worker = BurstWorker(hub, registry(), visibility_timeout=2, **kw)

    async def done() -> bool:
        status = await client.get_status(instance_id)
        return status is not None and status.runtime_status.is_terminal

    await worker.run_until(done, timeout=20, idle_sleep=0.01)
    return await client.get_status(instance_id, show_history=True)


@pytest.mark.parametrize("local", [True, False])
async def test_chains_fan_outs_and_children_run_to_the_end(local: bool) -> None:
    hub = TaskHub.in_memory()
    await hub.create_if_not_exists()
    client = DurableOrchestrationClient(hub)
    for name, value, expected in (
        ("chain", 1, 4),
        ("fan_out", 200, sum(range(1, 201))),  # through the queue: work items of 4
        ("parent", None, [3, 4, 5]),
    ):
        instance_id = await client.start_new(name, None, value)
        status = await run(hub, client, instance_id, local_activities=local)
        assert status.runtime_status is Status.Completed, status.output
        assert status.output == expected


async def test_a_timer_and_an_event_reach_the_instance_once() -> None:
    hub = TaskHub.in_memory()
    await hub.create_if_not_exists()
    client = DurableOrchestrationClient(hub)
    instance_id = await client.start_new("timer_then_event")
    await client.raise_event(instance_id, "Go", "early")
    await client.raise_event(instance_id, "Go", "again")
    status = await run(hub, client, instance_id)
    assert status.output == "early"
    kinds = [e["EventType"] for e in status.history]
    assert kinds.count("TimerFired") == 1 and kinds.count("EventRaised") == 2


async def test_two_workers_on_one_instance_cannot_both_commit() -> None:
    hub = TaskHub.in_memory()
    await hub.create_if_not_exists()
    client = DurableOrchestrationClient(hub)
    instance_id = await client.start_new("fan_out", None, 2)
    first, second = OrchestratorWorker(hub, registry()), OrchestratorWorker(hub, registry())
    start = (await hub.receive(hub.names.control_queue, 1, 30))[0]
    started = await hub.decode_message(start.text)
    assert isinstance(started, ControlMessage)
    await first.handle(started)
    await first._load(instance_id)
    entry = await second._load(instance_id)
    assert entry is not None
    second.cache.remember(instance_id, entry)
    now = datetime.now(UTC)
    results = [ControlMessage(instance_id, TaskCompleted(-1, now, t, str(t + 1))) for t in (0, 1)]
    await asyncio.gather(first.handle(results[0]), second.handle(results[1]))
    assert first.stats.conflicts + second.stats.conflicts == 1
    status = await client.get_status(instance_id)
    assert status is not None and status.output == 3


async def test_the_tables_twin_keeps_etags_and_all_or_nothing_transactions() -> None:
    tables = MemoryTables()
    await tables.create_table("T")
    etag = await tables.insert("T", {"PartitionKey": "p", "RowKey": "a", "N": 1})
    with pytest.raises(Conflict):
        await tables.insert("T", {"PartitionKey": "p", "RowKey": "a"})
    newer = await tables.update("T", {"PartitionKey": "p", "RowKey": "a", "N": 2}, etag=etag)
    with pytest.raises(PreconditionFailed):
        await tables.update("T", {"PartitionKey": "p", "RowKey": "a", "N": 3}, etag=etag)
    with pytest.raises(BatchError) as failed:
        await tables.submit_transaction(
            "T",
            [
                TableOperation.insert({"PartitionKey": "p", "RowKey": "b"}),
                TableOperation.update({"PartitionKey": "p", "RowKey": "a"}, etag=etag),
            ],
        )
    assert failed.value.index == 1 and failed.value.status == 412
    assert await tables.get_entity("T", "p", "b") is None  # nothing of it was applied
    row = await tables.get_entity("T", "p", "a")
    assert row is not None and row["N"] == 2 and row.etag == newer


def test_the_filter_twin_reads_what_the_engine_writes() -> None:
    when = datetime(2026, 1, 2, tzinfo=UTC)
    row = {"PartitionKey": "i-1", "RowKey": "state", "RuntimeStatus": "Running", "At": when}
    holds = compile_filter(
        "RowKey eq 'state' and ((RuntimeStatus eq 'Running' or RuntimeStatus eq 'Pending') "
        "and (At lt datetime'2026-02-01T00:00:00Z' or WakeAt lt datetime'2026-01-01T00:00:00Z'))"
    )
    assert holds(row)
    assert not compile_filter("PartitionKey ge 'i-2'")(row)
    assert compile_filter("not (RuntimeStatus eq 'Failed') and Name eq 'it''s'")(
        {**row, "Name": "it's"}
    )
    assert not compile_filter("Missing eq 'x'")(row)


async def test_the_queues_twin_hides_received_messages_and_checks_pop_receipts() -> None:
    queues = MemoryQueues()
    await queues.create_queue("q")
    await queues.send("q", "one")
    first = await queues.receive("q", 32, visibility_timeout=1)
    assert [m.text for m in first] == ["one"] and first[0].dequeue_count == 1
    assert await queues.receive("q", 32, 1) == []  # hidden
    await asyncio.sleep(1.05)
    again = await queues.receive("q", 32, 1)
    assert again[0].dequeue_count == 2
    with pytest.raises(Exception, match="PopReceiptMismatch"):
        await queues.delete("q", first[0].id, first[0].pop_receipt)
    await queues.delete("q", again[0].id, again[0].pop_receipt)
    assert await queues.approximate_count("q") == 0


def wait_days(ctx: Context) -> Any:
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(days=ctx.get_input()))
    return "fired"


async def test_a_session_idle_longer_than_session_idle_is_dropped_from_the_cache() -> None:
    """A worker keeps the session of every instance it has stepped; one whose instance moved
    on to another process (and perhaps ended there) is never used again, so a session idle
    for `session_idle` seconds is dropped instead of staying until `cache_size` newer ones
    push it out (the soak found hosts gaining ~50 such sessions a minute)."""
    hub = TaskHub.in_memory()
    await hub.create_if_not_exists()
    client = DurableOrchestrationClient(hub)
    found = registry()
    found.add_orchestrator("wait_days", wait_days)
    worker = OrchestratorWorker(hub, found, WorkerOptions(session_idle=0.3))

    async def start_one() -> str:
        instance_id = await client.start_new("wait_days", None, 1)
        received = await hub.receive(hub.names.control_queue, 1, 300)
        message = await hub.decode_message(received[0].text)
        assert isinstance(message, ControlMessage) and message.instance_id == instance_id
        await worker.handle(message)
        return instance_id

    idle = await start_one()
    assert worker.cache.get(idle) is not None and worker.cache.sessions == 1
    await asyncio.sleep(0.4)
    busy = await start_one()
    assert worker.cache.sessions == 1 and worker.cache.get(busy) is not None
    assert worker.cache.get(idle) is None
