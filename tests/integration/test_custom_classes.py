"""Custom classes cross every boundary of a running app (starter, orchestration, entity,
activity, sub-orchestration, event, custom status, output) and come back as themselves."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import APPS, HostLauncher, HostProcess, Storage, unique, wait_until
from tests.http_calls import call


@pytest.fixture
def host(azurite: Storage, start_host: HostLauncher) -> Iterator[HostProcess]:
    hub = "Custom" + unique("h").replace("-", "")[:20]
    yield start_host(APPS / "custom_class_app", env={"DURABLE_TEST_HUB": hub})


def test_custom_objects_round_trip_through_a_running_app(host: HostProcess) -> None:
    orders = [{"sku": "lamp", "qty": 2}, {"sku": "book", "qty": 3}]
    code, links = call(host.url("/api/checkout"), "POST", orders)
    assert code == 202
    status_url = links["statusQueryGetUri"]

    def waiting() -> dict | None:
        _, status = call(status_url)
        if status["runtimeStatus"] == "Failed":
            pytest.fail(f"the orchestration failed: {status['output']}")
        return status if status["customStatus"] is not None else None

    status = wait_until(waiting, timeout=60, message="the approval wait")
    assert status["customStatus"] == {
        "__class__": "Approval",
        "__module__": "shop",
        "__data__": '"waiting"',
    }
    assert [o["__class__"] for o in status["input"]] == ["Order", "Order"]
    code, _ = call(host.url(f"/api/checkout/{links['id']}/approve/alice"), "POST")
    assert code == 202

    def finished() -> dict | None:
        _, status = call(status_url)
        return status if status["runtimeStatus"] in ("Completed", "Failed") else None

    status = wait_until(finished, timeout=60, message="the checkout to finish")
    assert status["runtimeStatus"] == "Completed", status["output"]
    output = status["output"]
    assert (output["__class__"], output["__module__"]) == ("Receipt", "shop")
    assert json.loads(output["__data__"]) == {
        "lines": ["2 x lamp", "3 x book"],
        "total": 50,
        "by": "alice",
    }
