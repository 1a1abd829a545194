"""Entities end to end on the in-memory twin of storage: orchestrations and clients driving
counters through the real workers (storage itself is tested on Azurite, in integration)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orchestration.client import DurableOrchestrationClient
from orchestration.core import DurableOrchestrationContext, OrchestrationRuntimeStatus
from orchestration.core.entities import DurableEntityContext, EntityId
from orchestration.core.errors import TaskFailedError
from orchestration.functions.burst import BurstWorker
from orchestration.functions.registry import Registry
from orchestration.storage.hub import TaskHub

Status = OrchestrationRuntimeStatus


def counter(context: DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        value += context.get_input()
        context.set_state(value)
    elif operation == "get":
        context.set_result(value)
    elif operation == "boom":
        context.set_state(value + 1000)
        raise ValueError("no such thing")
    elif operation == "delete":
        context.destruct_on_exit()


def adder(ctx: DurableOrchestrationContext) -> Any:
    target = EntityId("Counter", ctx.get_input()["key"])
    for _ in range(ctx.get_input()["times"]):
        ctx.signal_entity(target, "add", 1)
    value = yield ctx.call_entity(target, "get")
    return value


def caller_of_boom(ctx: DurableOrchestrationContext) -> Any:
    target = EntityId("Counter", "boom")
    yield ctx.call_entity(target, "add", 5)
    try:
        yield ctx.call_entity(target, "boom")
    except TaskFailedError as error:
        failed = error.failure.error_type
    value = yield ctx.call_entity(target, "get")
    return {"failed": failed, "value": value}


def registry() -> Registry:
    found = Registry()
    found.add_entity("Counter", counter)
    found.add_orchestrator("adder", adder)
    found.add_orchestrator("caller_of_boom", caller_of_boom)
    return found


async def drive(hub: TaskHub, client: DurableOrchestrationClient, ids: list[str]) -> None:
    worker = BurstWorker(hub, registry(), visibility_timeout=2)

    async def done() -> bool:
        for instance_id in ids:
            status = await client.get_status(instance_id)
            if status is None or not status.runtime_status.is_terminal:
                return False
        return True

    await worker.run_until(done, timeout=30, idle_sleep=0.01)


@pytest.fixture
async def hub() -> TaskHub:
    hub = TaskHub.in_memory()
    await hub.create_if_not_exists()
    return hub


async def test_orchestrations_signal_and_call_a_counter(hub: TaskHub) -> None:
    client = DurableOrchestrationClient(hub)
    ids = [await client.start_new("adder", None, {"key": "c1", "times": 5}) for _ in range(4)]
    await drive(hub, client, ids)
    outputs = [(await client.get_status(i)).output for i in ids]
    # Each caller's own signals ran before its call (one sender's requests in order).
    assert all(value >= 5 for value in outputs), outputs
    assert max(outputs) == 20
    state = await client.read_entity_state(EntityId("Counter", "c1"))
    assert state.entity_exists and state.entity_state == 20


async def test_a_raising_operation_fails_alone_and_rolls_back(hub: TaskHub) -> None:
    client = DurableOrchestrationClient(hub)
    instance_id = await client.start_new("caller_of_boom")
    await drive(hub, client, [instance_id])
    status = await client.get_status(instance_id)
    assert status.runtime_status is Status.Completed, status.output
    assert status.output == {"failed": "ValueError", "value": 5}


async def test_client_signals_create_read_and_delete(hub: TaskHub) -> None:
    client = DurableOrchestrationClient(hub)
    entity = EntityId("Counter", "from-client")
    assert (await client.read_entity_state(entity)).entity_exists is False
    for amount in (1, 2, 3):
        await client.signal_entity(entity, "add", amount)
    worker = BurstWorker(hub, registry(), visibility_timeout=2)

    async def settled() -> bool:
        return (await client.read_entity_state(entity)).entity_state == 6

    await worker.run_until(settled, timeout=10, idle_sleep=0.01)
    listed, _ = await client.list_entities("counter")
    assert [str(m.entity_id) for m in listed] == ["@counter@from-client"]
    await client.signal_entity(entity, "delete")

    async def gone() -> bool:
        return not (await client.read_entity_state(entity)).entity_exists

    await worker.run_until(gone, timeout=10, idle_sleep=0.01)
    assert await client.clean_entity_storage() == 1
    statuses = await client.get_status_all()
    assert all(not s.instance_id.startswith("@") for s in statuses)


async def test_signals_sent_at_once_share_queue_messages(hub: TaskHub) -> None:
    from orchestration.entity_client import signals_of

    client = DurableOrchestrationClient(hub)
    entity = EntityId("Counter", "burst")
    await asyncio.gather(*(client.signal_entity(entity, "add", 1) for _ in range(1000)))
    assert signals_of(hub).messages == 10  # 100 requests a message
    worker = BurstWorker(hub, registry(), visibility_timeout=2)

    async def settled() -> bool:
        return (await client.read_entity_state(entity)).entity_state == 1000

    await worker.run_until(settled, timeout=10, idle_sleep=0.01)
    assert (await client.read_entity_state(entity)).entity_state == 1000
