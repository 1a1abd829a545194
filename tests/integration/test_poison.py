"""Poison: an activity that kills its worker every time fails its task readably, and only it.

The host runs 2 worker processes under its supervisor, which replaces a worker that dies.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from typing import Any

from tests.conftest import APPS, HostLauncher, Storage, unique, wait_until


def call(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    """One HTTP call; a connection cut by a dying worker process is retried (a few times)."""
    data = None if body is None else json.dumps(body).encode()
    for attempt in range(10):
        request = urllib.request.Request(url, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")
        except (ConnectionError, http.client.HTTPException, urllib.error.URLError):
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError(f"{method} {url}: no answer after 10 attempts")


def start(host: Any, name: str, instance_id: str, body: Any = None) -> dict[str, Any]:
    """Start `name` as `instance_id`, returning its management URLs.

    The starter runs the instance's first step in its own process, and the activity may kill
    that process right after the instance is created, taking the response with it: a
    retried start then finds the instance (409), which is as good.
    """
    code, answer = call(host.url(f"/api/orchestrators/{name}/{instance_id}"), "POST", body)
    assert code in (202, 409), (code, answer)
    return {"statusQueryGetUri": host.url(f"/api/durabletask/instances/{instance_id}")}


def test_an_activity_that_always_crashes_its_worker_fails_the_instance_readably(
    azurite: Storage, start_host: HostLauncher
) -> None:
    hub = "Poison" + unique("p").replace("-", "")[:16]
    env = {"DURABLE_TEST_HUB": hub, "ORCHESTRATION_QUEUE_LEASE_SECONDS": "2"}
    host = start_host(APPS / "poison_app", env=env, workers=2)
    crashing = start(host, "crashing", unique("crashing"), 1)
    survivor = start(host, "survivor", unique("survivor"))

    def finished(payload: dict[str, Any]) -> Any:
        def check() -> Any:
            code, status = call(payload["statusQueryGetUri"])
            return status if code == 200 else None

        return check

    try:
        failed = wait_until(finished(crashing), timeout=180, message="crashing instance to fail")
    except BaseException:
        print(host.log()[-20000:])
        raise
    assert failed["runtimeStatus"] == "Failed"
    assert "Activity 'crash_worker' did not complete in 3 attempts" in failed["output"]
    assert "poison" in failed["output"]

    caught = wait_until(finished(survivor), timeout=180, message="survivor to finish")
    assert caught["runtimeStatus"] == "Completed", caught
    assert caught["output"] == {"caught": "PoisonMessageError"}
