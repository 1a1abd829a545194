"""Entities end to end: the project's inventory entities and stock_order on the local host,
over HTTP (signal, read, list) and driven by orchestrations, on Azurite; and an entity's
storage (its state past the payload threshold, its batch rows) on Azurite in this process."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import orchestration as df
from orchestration.client import DurableOrchestrationClient
from orchestration.core.entities import (
    ENTITY_OPERATION,
    REORDER_WINDOW,
    OperationRequest,
    pack_requests,
)
from orchestration.core.history import EventRaised
from orchestration.functions.burst import BurstWorker
from orchestration.functions.orchestrator import OrchestratorWorker
from orchestration.functions.orchestrator.inbox import Arrival
from orchestration.functions.registry import Registry
from orchestration.functions.triggers import sweep
from orchestration.storage import codec
from orchestration.storage.entities import EntityStore
from orchestration.storage.hub import TaskHub
from orchestration.storage.messages import ControlMessage
from tests.conftest import Storage, launch_host, unique
from tests.integration.test_workflows import APP_DIR, Workflows, http, poll

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def workflows(azurite: Storage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workflows]:
    hub = f"En{uuid.uuid4().hex[:16]}"
    log_path = Path(tmp_path_factory.mktemp("entities")) / "host.log"
    host = launch_host(APP_DIR, azurite.connection_string, log_path, {"WORKFLOWS_TEST_HUB": hub})
    try:
        yield Workflows(host)
    finally:
        host.stop()


def entity_url(workflows: Workflows, sku: str, **query: str) -> str:
    suffix = "&".join(f"{k}={quote(v)}" for k, v in query.items())
    return workflows.url(f"/api/durabletask/entities/inventory/{quote(sku, safe='')}") + (
        f"?{suffix}" if suffix else ""
    )


def state_of(workflows: Workflows, sku: str) -> Any:
    reply = http("GET", entity_url(workflows, sku))
    return reply.json() if reply.status == 200 else None


def wait_state(workflows: Workflows, sku: str, check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        state = state_of(workflows, sku)
        if state is not None and check(state):
            return state
        if time.monotonic() > deadline:
            pytest.fail(f"entity {sku} never reached the expected state: {state}")
        time.sleep(0.05)


def test_signal_read_and_list_over_http(workflows: Workflows) -> None:
    sku = unique("lamp")
    assert http("GET", entity_url(workflows, sku)).status == 404
    for amount in (3, 4):
        reply = http("POST", entity_url(workflows, sku, op="restock"), amount)
        assert reply.status == 202, reply.body
    assert wait_state(workflows, sku, lambda s: s["available"] == 7) == {
        "available": 7,
        "reserved": {},
    }
    listed = http("GET", workflows.url("/api/durabletask/entities/inventory?fetchState=true"))
    assert listed.status == 200
    mine = [e for e in listed.json() if e["entityId"]["key"] == sku]
    assert mine and mine[0]["state"]["available"] == 7 and mine[0]["id"] == f"@inventory@{sku}"
    # The entity is not an orchestration: the instance listing leaves it out.
    instances = http("GET", workflows.url("/api/durabletask/instances?top=1000")).json()
    assert not any(i["instanceId"].startswith("@") for i in instances)


def test_the_entity_api_refuses_what_it_cannot_take(workflows: Workflows) -> None:
    sku = unique("bad")
    assert http("POST", entity_url(workflows, sku)).status == 400  # no op
    assert http("POST", entity_url(workflows, sku, op="restock"), raw=b"{nope").status == 400
    assert http("POST", entity_url(workflows, sku, op="restock"), raw=b"1e99999").status == 400
    unknown = workflows.url(f"/api/durabletask/entities/nobody/{sku}?op=x")
    assert http("POST", unknown).status == 404
    assert http("POST", entity_url(workflows, sku, op="restock"), 1, headers={}).status == 401
    assert http("GET", entity_url(workflows, sku), headers={}).status == 401
    bad_name = workflows.url("/api/durabletask/entities/in%20valid/k")
    assert http("GET", bad_name).status == 400


def test_orders_reserve_stock_one_at_a_time_and_give_back_when_short(
    workflows: Workflows,
) -> None:
    lamp, book = unique("lamp"), unique("book")
    http("POST", entity_url(workflows, lamp, op="restock"), 10)
    http("POST", entity_url(workflows, book, op="restock"), 100)
    wait_state(workflows, lamp, lambda s: s["available"] == 10)
    wait_state(workflows, book, lambda s: s["available"] == 100)
    # 25 orders race for 10 lamps (and 1 book each): exactly 10 get theirs.
    starts = [
        workflows.start(
            "stock_order",
            {
                "order_id": f"o{i}",
                "items": [{"sku": book, "quantity": 1}, {"sku": lamp, "quantity": 1}],
            },
        )
        for i in range(25)
    ]
    outputs = [poll(s["statusQueryGetUri"]).output for s in starts]
    reserved = [o for o in outputs if o["status"] == "Reserved"]
    short = [o for o in outputs if o["status"] == "OutOfStock"]
    assert len(reserved) == 10 and len(short) == 15, outputs
    assert all("available" in o["error"] for o in short)
    # The short orders released their book: 10 books are taken, exactly.
    books = wait_state(workflows, book, lambda s: len(s["reserved"]) == 10 and s["available"] == 90)
    lamps = state_of(workflows, lamp)
    assert lamps["available"] == 0 and sorted(lamps["reserved"]) == sorted(
        o["order_id"] for o in reserved
    )
    assert sorted(books["reserved"]) == sorted(lamps["reserved"])


def test_a_deleted_entity_is_gone(workflows: Workflows) -> None:
    sku = unique("gone")
    http("POST", entity_url(workflows, sku, op="restock"), 1)
    wait_state(workflows, sku, lambda s: s["available"] == 1)
    http("POST", entity_url(workflows, sku, op="delete"))
    deadline = time.monotonic() + 30
    while http("GET", entity_url(workflows, sku)).status != 404:
        assert time.monotonic() < deadline, "the entity was not deleted"
        time.sleep(0.05)


# -- storage, in this process ------------------------------------------------------------
def journal(context: df.DurableEntityContext) -> None:
    entries = context.get_state(list)
    if context.operation_name == "append":
        entries.append(context.get_input())
        context.set_state(entries)
    context.set_result(len(entries))


def append_many(context: df.DurableOrchestrationContext) -> Any:
    entity = df.EntityId("journal", context.get_input())
    for i in range(20):
        context.signal_entity(entity, "append", f"{i:03d}" + "x" * 2000)
    count = yield context.call_entity(entity, "count")
    return count


async def test_state_past_the_payload_threshold_lives_in_a_blob(azurite: Storage) -> None:
    hub = TaskHub.from_connection_string(
        azurite.connection_string, f"T{uuid.uuid4().hex[:12]}", payload_threshold=8_000
    )
    await hub.create_if_not_exists()
    try:
        registry = Registry()
        registry.add_entity("journal", journal)
        registry.add_orchestrator("append_many", append_many)
        client = DurableOrchestrationClient(hub)
        worker = BurstWorker(hub, registry, visibility_timeout=5)
        # Two orchestrations one after the other: two batches, each with a snapshot blob.
        for expected in (20, 40):
            instance_id = await client.start_new("append_many", None, "big")

            async def done(instance_id: str = instance_id) -> bool:
                status = await client.get_status(instance_id)
                return status is not None and status.runtime_status.is_terminal

            await worker.run_until(done, timeout=60, idle_sleep=0.01)
            status = await client.get_status(instance_id)
            assert status is not None and status.output == expected
        state = await hub.read_state("@journal@big")
        assert state is not None and state.input is not None and state.input.startswith('{"$blob"')
        response = await client.read_entity_state(df.EntityId("journal", "big"))
        assert [entry[:3] for entry in response.entity_state] == [
            f"{i:03d}" for i in (*range(20), *range(20))
        ]
        # Each batch left a row of what it applied (the look-up for copies).
        batches = await EntityStore(hub).applied("@journal@big")
        assert len(batches) == 2 and sum(len(b.request_keys) for b in batches) == 42
        # Each batch wrote a new snapshot blob and deleted the one it replaced: one is left
        # (besides blobs of messages too large for the queue, which are not the snapshot's).
        prefix = codec.blob_prefix("@journal@big")
        names = {b.name for b in await hub.blobs.list(hub.names.payload_container, prefix)}
        current = json.loads(state.input)["$blob"]
        snapshots = set()
        for name in names:
            text = (await hub.blobs.download(hub.names.payload_container, name)).decode()
            if text.startswith('{"exists"'):
                snapshots.add(name)
        assert snapshots == {current}, (len(batches), snapshots)
    finally:
        await hub.close()


def tally(context: df.DurableEntityContext) -> None:
    context.set_state(context.get_state(lambda: 0) + 1)


@pytest.fixture
async def tally_worker(azurite: Storage) -> AsyncIterator[OrchestratorWorker]:
    """An orchestrator worker (with its entity worker) of a fresh hub on Azurite, in this
    process, with the `tally` entity."""
    hub = TaskHub.from_connection_string(azurite.connection_string, f"T{uuid.uuid4().hex[:12]}")
    await hub.create_if_not_exists()
    registry = Registry()
    registry.add_entity("tally", tally)
    worker = OrchestratorWorker(hub, registry)
    yield worker
    worker.close()
    await hub.close()


def arrival(entity: str, name: str, text: str) -> Arrival:
    message = ControlMessage(entity, EventRaised(-1, datetime.now(UTC), name, text), None)
    return Arrival(message, 1, asyncio.get_running_loop().create_future())


async def test_a_backlog_of_thousands_commits_in_batches_on_azurite(
    tally_worker: OrchestratorWorker,
) -> None:
    """3,000 queued requests handed over at once: their ids would overflow one batch row's
    property (32k characters), so they commit in several batches, each exactly once."""
    worker, hub = tally_worker, tally_worker.hub
    loop = asyncio.get_running_loop()
    now = datetime.now(UTC)
    arrivals = [
        arrival("@tally@backlog", ENTITY_OPERATION, OperationRequest(f"r-{i}", "add").to_json())
        for i in range(3000)
    ]
    await worker.entities.process("@tally@backlog", arrivals)
    # The same requests again, as a redelivery would bring them: none runs twice.
    again = [Arrival(a.message, 2, loop.create_future()) for a in arrivals[:700]]
    await worker.entities.process("@tally@backlog", again)
    client = DurableOrchestrationClient(hub)
    response = await client.read_entity_state(df.EntityId("tally", "backlog"))
    assert response.entity_state == 3000
    batches = await EntityStore(hub).applied("@tally@backlog")
    assert len(batches) >= 6 and sum(len(b.request_keys) for b in batches) == 3000
    # The same as 30 messages of 100 requests each (as senders pack them): cut by request.
    packed = []
    for m in range(30):
        texts = [OperationRequest(f"p-{m}-{i}", "add", sent_at=now).to_json() for i in range(100)]
        packed.append(arrival("@tally@packed", *pack_requests(texts)))
    await worker.entities.process("@tally@packed", packed)
    response = await client.read_entity_state(df.EntityId("tally", "packed"))
    assert response.entity_state == 3000
    assert len(await EntityStore(hub).applied("@tally@packed")) >= 6


async def test_the_sweeper_wakes_an_entity_only_to_release_a_held_request(
    tally_worker: OrchestratorWorker,
) -> None:
    worker, hub = tally_worker, tally_worker.hub
    now = datetime.now(UTC)

    async def hand_over(entity: str, request: OperationRequest) -> None:
        handed = arrival(entity, ENTITY_OPERATION, request.to_json())
        await worker.entities.process(entity, [handed])

    await hand_over("@tally@idle", OperationRequest("a", "add", sent_at=now))
    # Position 1 of a sender whose position 0 has not come: held back.
    early = OperationRequest("b", "add", sender="s", position=1, sent_at=now, previous_at=now)
    await hand_over("@tally@held", early)
    control = hub.names.control_queue
    await sweep(hub, timedelta(0), now + timedelta(minutes=1))
    assert await hub.queues.approximate_count(control) == 0  # nothing to do: no wake-up
    await sweep(hub, timedelta(0), now + REORDER_WINDOW + timedelta(minutes=1))
    woken = await hub.receive(control, 32, 30)
    assert [(await hub.decode_message(m.text)).instance_id for m in woken] == ["@tally@held"]
