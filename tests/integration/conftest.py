"""Fixtures of the integration tests that drive the engine in this process, on Azurite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from orchestration.client import DurableOrchestrationClient
from orchestration.storage.hub import TaskHub
from tests.conftest import Storage


@pytest.fixture
async def hub(azurite: Storage) -> AsyncIterator[TaskHub]:
    """A fresh task hub for one test (its own tables, queues and container)."""
    instance = TaskHub.from_connection_string(
        azurite.connection_string, f"T{uuid.uuid4().hex[:12]}"
    )
    await instance.create_if_not_exists()
    yield instance
    await instance.close()


@pytest.fixture
def client(hub: TaskHub) -> DurableOrchestrationClient:
    """A client of the test's hub, with no engine in this process (it polls)."""
    return DurableOrchestrationClient(hub)
