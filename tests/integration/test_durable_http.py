"""Durable HTTP over the local host: an orchestrator's `call_http` to a server in this test
process, DF's 202 polling on durable timers, and what failures look like."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from orchestration.core.durable_http import DurableHttpRequest
from orchestration.functions import http_activity
from orchestration.host.azurite import free_port
from tests.conftest import APPS, HostProcess, Storage, launch_host, unique, wait_until
from tests.http_calls import call


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class Target:
    """An HTTP server on a free port, run on its own loop in a thread of this process."""

    port: int
    seen: list[Seen] = field(default_factory=list)
    polls: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def record(self, request: web.Request) -> None:
        body = await request.text()
        self.seen.append(Seen(request.method, request.path_qs, dict(request.headers), body))

    async def start_job(self, request: web.Request) -> web.Response:
        await self.record(request)
        job = request.match_info["job"]
        self.polls[job] = 0
        headers = {"Location": f"/status/{job}", "Retry-After": "1"}
        return web.Response(status=202, headers=headers)

    async def status(self, request: web.Request) -> web.Response:
        await self.record(request)
        job = request.match_info["job"]
        self.polls[job] += 1
        if self.polls[job] < 2:
            headers = {"Location": f"/status/{job}", "Retry-After": "1"}
            return web.Response(status=202, headers=headers)
        return web.json_response({"job": job, "polls": self.polls[job]}, headers={"X-Job": job})

    async def echo(self, request: web.Request) -> web.Response:
        await self.record(request)
        seen = self.seen[-1]
        return web.json_response(
            {"body": seen.body, "contentType": seen.headers.get("Content-Type")},
            headers={"X-Echo": "yes"},
        )

    async def broken(self, request: web.Request) -> web.Response:
        await self.record(request)
        return web.Response(status=500, text="the server broke")

    async def cookies(self, request: web.Request) -> web.Response:
        response = web.Response(text="two cookies")
        response.headers.add("Set-Cookie", "a=1")
        response.headers.add("Set-Cookie", "b=2")
        return response

    async def slow(self, request: web.Request) -> web.Response:
        # Well past the 0.5 s the test allows; not longer, as the module's teardown waits
        # for this handler to end.
        await asyncio.sleep(2)
        return web.Response(text="late")

    async def moved(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/echo")


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    server = Target(free_port())
    app = web.Application()
    app.router.add_post("/jobs/{job}", server.start_job)
    app.router.add_get("/status/{job}", server.status)
    app.router.add_route("*", "/echo", server.echo)
    app.router.add_get("/broken", server.broken)
    app.router.add_get("/cookies", server.cookies)
    app.router.add_get("/slow", server.slow)
    app.router.add_get("/moved", server.moved)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", server.port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="http-target", daemon=True)
    thread.start()
    assert ready.wait(10)
    yield server
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.fixture(scope="module")
def host(azurite: Storage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    """One host for the module: each test starts its own instances and tells its requests
    apart by a marker or job of its own."""
    hub = "Http" + unique("h").replace("-", "")[:20]
    log = tmp_path_factory.mktemp("durable-http") / "host.log"
    process = launch_host(
        APPS / "durable_http_app", azurite.connection_string, log, {"DURABLE_TEST_HUB": hub}
    )
    yield process
    process.stop()


def run(host: HostProcess, orchestrator: str, payload: Any) -> dict[str, Any]:
    """Start `orchestrator` and wait for its end; its status with history and outputs."""
    code, started = call(host.url(f"/api/orchestrators/{orchestrator}"), "POST", payload)
    assert code == 202, started
    status_url = started["statusQueryGetUri"] + "&showHistory=true&showHistoryOutput=true"

    def done() -> dict[str, Any] | None:
        code, status = call(status_url)
        if code == 200 and status["runtimeStatus"] in ("Completed", "Failed"):
            return status
        return None

    status: dict[str, Any] = wait_until(done, timeout=60, message=f"{orchestrator} to finish")
    return status


def event_types(status: dict[str, Any]) -> list[str]:
    return [event["EventType"] for event in status["historyEvents"]]


def test_a_202_is_polled_on_durable_timers_until_the_final_json_answer(
    host: HostProcess, target: Target
) -> None:
    job = unique("job")
    status = run(host, "fetch", {"method": "POST", "url": target.url(f"/jobs/{job}")})
    assert status["runtimeStatus"] == "Completed", status
    output = status["output"]
    assert output["status_code"] == output["df_status_code"] == 200
    assert output["is_response"] is True
    assert json.loads(output["content"]) == {"job": job, "polls": 2}
    assert output["headers"]["X-Job"] == job
    types = event_types(status)
    assert types.count("TimerCreated") == 2 and types.count("TimerFired") == 2
    assert types.count("TaskScheduled") == 3  # the POST and two polls
    paths = [s.path for s in target.seen if job in s.path]
    assert paths == [f"/jobs/{job}", f"/status/{job}", f"/status/{job}"]
    assert [s.method for s in target.seen if job in s.path] == ["POST", "GET", "GET"]


def test_dict_content_arrives_as_json_and_headers_round_trip(
    host: HostProcess, target: Target
) -> None:
    marker = unique("m")
    payload = {
        "method": "POST",
        "url": target.url("/echo"),
        "content": {"city": "Oslo", "marker": marker},
        "headers": {"X-Marker": marker, "Accept": "application/json"},
    }
    status = run(host, "fetch", payload)
    assert status["runtimeStatus"] == "Completed", status
    request = next(s for s in target.seen if s.headers.get("X-Marker") == marker)
    assert json.loads(request.body) == {"city": "Oslo", "marker": marker}
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"].startswith("text/plain")  # DF's default
    output = status["output"]
    assert output["headers"]["X-Echo"] == "yes"
    assert output["headers"]["Content-Type"].startswith("application/json")
    assert json.loads(json.loads(output["content"])["body"]) == payload["content"]


def test_an_authorization_header_reaches_the_server_but_not_history(
    host: HostProcess, target: Target
) -> None:
    marker = unique("m")
    payload = {"url": target.url("/echo"), "content": [1, 2], "marker": marker}
    status = run(host, "fetch_with_secret", payload)
    assert status["runtimeStatus"] == "Completed", status
    request = next(s for s in target.seen if s.headers.get("X-Marker") == marker)
    assert request.headers["Authorization"] == "Bearer app-secret-token"
    assert "app-secret-token" not in json.dumps(status)
    (scheduled,) = [e for e in status["historyEvents"] if e["EventType"] == "TaskScheduled"]
    assert scheduled["Name"] == "BuiltIn::HttpActivity"
    assert "[redacted]" in json.dumps(scheduled)
    assert "app-secret-token" not in host.log()


def test_a_raw_str_with_its_content_type_is_sent_as_it_is(
    host: HostProcess, target: Target
) -> None:
    marker = unique("m")
    payload = {
        "method": "PUT",
        "url": target.url("/echo"),
        "content": f"<m>{marker}</m>",
        "raw": True,
        "headers": {"Content-Type": "application/xml", "X-Marker": marker},
    }
    status = run(host, "fetch", payload)
    echoed = json.loads(status["output"]["content"])
    assert echoed == {"body": f"<m>{marker}</m>", "contentType": "application/xml"}


def test_a_500_is_returned_as_a_response(host: HostProcess, target: Target) -> None:
    status = run(host, "fetch", {"method": "GET", "url": target.url("/broken")})
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"]["status_code"] == 500
    assert status["output"]["content"] == "the server broke"


def test_connection_refused_fails_the_task_with_task_failed_error(host: HostProcess) -> None:
    url = f"http://127.0.0.1:{free_port()}/nothing?code=secret"
    status = run(host, "fetch_or_report", {"method": "GET", "url": url})
    assert status["runtimeStatus"] == "Completed", status
    output = status["output"]
    assert output["error_type"] == "DurableHttpError"
    assert "could not be sent" in output["failed"]
    assert "secret" not in output["failed"]
    uncaught = run(host, "fetch", {"method": "GET", "url": url})
    assert uncaught["runtimeStatus"] == "Failed"
    assert "TaskFailedError" in json.dumps(uncaught["output"])


def test_managed_identity_without_azure_identity_fails_with_a_clear_error(
    host: HostProcess, target: Target
) -> None:
    try:
        import azure.identity  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("azure-identity is installed here")
    status = run(host, "fetch_with_identity", target.url("/echo"))
    assert status["runtimeStatus"] == "Completed", status
    assert "'azure-identity'" in status["output"]["failed"]


# The HTTP activity on its own (no host): what DF's client does that the tests above do not show.
async def test_a_repeated_response_header_comes_back_as_a_list(target: Target) -> None:
    response = await http_activity.send(DurableHttpRequest("GET", target.url("/cookies")))
    assert response.headers["Set-Cookie"] == ["a=1", "b=2"]
    assert response.content == "two cookies"


async def test_redirects_are_followed(target: Target) -> None:
    response = await http_activity.send(DurableHttpRequest("GET", target.url("/moved")))
    assert response.status_code == 200
    assert json.loads(response.content or "null")["body"] == ""


async def test_a_request_without_an_answer_in_time_fails(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_activity, "REQUEST_TIMEOUT_SECONDS", 0.5)
    with pytest.raises(http_activity.DurableHttpError, match=r"got no answer in 0\.5 seconds"):
        await http_activity.send(DurableHttpRequest("GET", target.url("/slow?code=x")))


async def test_multipart_content_is_refused_as_in_df(target: Target) -> None:
    headers = {"Content-Type": "multipart/form-data; boundary=x"}
    request = DurableHttpRequest("POST", target.url("/echo"), "--x--", headers)
    with pytest.raises(http_activity.DurableHttpError, match="Multipart"):
        await http_activity.send(request)
