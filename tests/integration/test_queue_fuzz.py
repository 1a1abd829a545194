"""Bad input at the engine's queue doors: whatever lands on the starts, control or work-item
queue, the handler neither raises nor harms a running instance; foreign messages go to the
poison queue with a reason.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.client import DurableOrchestrationClient
from orchestration.functions.burst import BurstWorker
from orchestration.functions.engine import Engine
from orchestration.functions.settings import EngineSettings
from orchestration.functions.triggers import on_control_message, on_start_message, on_work_item
from orchestration.storage.hub import TaskHub
from tests.conftest import Storage
from tests.integration.test_task_hub import finished, make_registry

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
engine_like = st.fixed_dictionaries(
    {},
    optional={
        "v": st.sampled_from([1, 2, "1", None]),
        "k": st.sampled_from(["control", "activity", "other", 3]),
        "i": st.text(max_size=30) | st.integers(),
        "x": st.text(max_size=10) | st.none(),
        "t": st.integers() | st.text(max_size=3),
        "n": st.text(max_size=10),
        "e": json_values,
        "id": st.text(max_size=10),
        "name": st.text(max_size=20) | st.sampled_from(["chain", "fan_out"]),
        "input": json_values,
        "instanceId": st.text(max_size=30) | st.integers(),
    },
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    engine_like.map(lambda v: json.dumps(v).encode()),
    engine_like.map(lambda v: base64.b64encode(json.dumps(v).encode())),
)


@pytest.fixture(scope="module")
async def fuzz_hub(azurite: Storage) -> AsyncIterator[TaskHub]:
    hub = TaskHub.from_connection_string(azurite.connection_string, f"F{uuid.uuid4().hex[:12]}")
    await hub.create_if_not_exists()
    yield hub
    await hub.close()


async def test_no_message_on_any_engine_queue_breaks_a_handler_or_a_running_instance(
    fuzz_hub: TaskHub,
) -> None:
    hub = fuzz_hub
    engine = Engine(make_registry(), EngineSettings(hub_name=hub.names.hub), hub=hub)
    client = DurableOrchestrationClient(hub)
    bystander = await client.start_new("chain", None, 10)
    seen: list[bytes] = []
    loop = asyncio.get_running_loop()

    @settings(
        max_examples=120,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(body=bodies, door=st.sampled_from(["starts", "control", "workitems"]))
    def feed(body: bytes, door: str) -> None:
        seen.append(body)
        message = func.QueueMessage(id=uuid.uuid4().hex, body=body)
        handler = {
            "starts": on_start_message,
            "control": on_control_message,
            "workitems": on_work_item,
        }[door]
        future = asyncio.run_coroutine_threadsafe(handler(engine, message), loop)
        future.result(timeout=30)

    await asyncio.to_thread(feed)
    assert len(seen) >= 100
    worker = BurstWorker(hub, make_registry(), visibility_timeout=2)
    await worker.run_until(finished(client, bystander), timeout=60)
    status = await client.get_status(bystander)
    assert status is not None and status.output == 13
