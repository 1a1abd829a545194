"""The host's HTTP server refuses what a careless or hostile client sends, before the app
sees it: bodies over a limit (without reading them), slow or idle connections, and URLs or
headers that are not valid UTF-8. Each refusal is a 4xx (or 503) with a JSON body."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import APPS, HostProcess, Storage, launch_host

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def guarded_host(
    azurite: Storage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostProcess]:
    """http_app with short connection timeouts and small body limits, so tests are quick."""
    log = tmp_path_factory.mktemp("guarded-host") / "host.log"
    env = {
        "OUT_QUEUE": "guard-out",
        "ORCHESTRATION_HOST_KEEPALIVE_SECONDS": "2",
        "ORCHESTRATION_HOST_HEADER_TIMEOUT_SECONDS": "1",
        "ORCHESTRATION_HOST_BODY_TIMEOUT_SECONDS": "1",
        "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": str(64 * MIB),
        "ORCHESTRATION_HOST_BODY_BUDGET_BYTES": str(100 * MIB),
    }
    host = launch_host(APPS / "http_app", azurite.connection_string, log, env)
    yield host
    host.stop()


def connect(host: HostProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", host.port), timeout=10)
    return sock


def read_response(sock: socket.socket, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one response (Content-Length framed)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length]


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closes the connection (None: still open after `seconds`)."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return time.monotonic() - started
    except TimeoutError:
        return None
    except ConnectionResetError:
        return time.monotonic() - started


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def post_head(path: str, length: int | None, extra: str = "") -> bytes:
    framing = (
        f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    )
    return f"POST {path} HTTP/1.1\r\nHost: x\r\n{framing}{extra}\r\n".encode()


def test_a_body_over_the_routes_limit_is_refused_by_its_length_before_it_is_read(
    guarded_host: HostProcess,
) -> None:
    with connect(guarded_host) as sock:
        # 10 MiB announced, nothing sent: the answer can only come from the header.
        sock.sendall(post_head("/api/small-body", 10 * MIB))
        status, headers, body = read_response(sock, timeout=5)
    assert status == 413
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"] == "Request body too large"
    assert "1024" in json.loads(body)["detail"]


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(
    guarded_host: HostProcess,
) -> None:
    with connect(guarded_host) as sock:
        sock.sendall(post_head("/api/small-body", None))
        chunk = b"x" * 800
        for _ in range(2):
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        status, _, body = read_response(sock, timeout=5)
    assert status == 413
    assert json.loads(body)["error"] == "Request body too large"


def test_a_body_within_the_limit_reaches_the_function(guarded_host: HostProcess) -> None:
    with connect(guarded_host) as sock:
        sock.sendall(post_head("/api/small-body", 1000) + b"y" * 1000)
        status, _, body = read_response(sock)
    assert status == 200
    assert json.loads(body) == {"length": 1000}


def test_a_100_mib_upload_over_the_host_limit_does_not_grow_the_host(
    guarded_host: HostProcess,
) -> None:
    before = rss_bytes(guarded_host.process.pid)
    with connect(guarded_host) as sock:
        sock.sendall(post_head("/api/body-length", 100 * MIB))
        status, _, _ = read_response(sock, timeout=10)
        sent = 0
        block = b"z" * MIB
        try:  # the server stops reading: at most a socket buffer's worth gets through
            sock.settimeout(2)
            while sent < 100 * MIB:
                sock.sendall(block)
                sent += len(block)
        except OSError:
            pass
    assert status == 413
    assert rss_bytes(guarded_host.process.pid) - before < 20 * MIB


def test_large_bodies_received_at_once_share_a_budget(guarded_host: HostProcess) -> None:
    """Two 60 MiB uploads at once: the second is refused with 503 (the budget is 100 MiB)
    while the first is still arriving; the first completes once all of it is sent."""
    size = 60 * MIB
    first = connect(guarded_host)
    first.sendall(post_head("/api/body-length", size) + b"a" * MIB)
    time.sleep(0.3)
    with connect(guarded_host) as second:
        second.sendall(post_head("/api/body-length", size))
        status, headers, body = read_response(second, timeout=5)
    assert status == 503
    assert headers.get("retry-after") == "1"
    assert json.loads(body)["error"] == "Server busy"
    sender = threading.Thread(target=first.sendall, args=(b"a" * (size - MIB),))
    sender.start()
    status, _, body = read_response(first, timeout=30)
    sender.join()
    first.close()
    assert status == 200
    assert json.loads(body) == {"length": size}


def test_an_idle_connection_is_closed_after_the_keepalive_timeout(
    guarded_host: HostProcess,
) -> None:
    with connect(guarded_host) as sock:
        closed = closed_within(sock, 6)
    assert closed is not None and 1.5 < closed < 4


def test_a_request_head_trickled_byte_by_byte_is_cut_off(guarded_host: HostProcess) -> None:
    """Slow loris: the head must be complete within the header timeout (1 s here), however
    often bytes arrive."""
    with connect(guarded_host) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /api/items/1 HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(40):
                sock.sendall(b"X")
                time.sleep(0.1)
        except OSError:
            pass
        closed = closed_within(sock, 5)
        elapsed = time.monotonic() - started
    assert closed is not None
    assert elapsed < 4.5


def test_a_body_that_stops_arriving_is_answered_408(guarded_host: HostProcess) -> None:
    with connect(guarded_host) as sock:
        sock.sendall(post_head("/api/body-length", 100) + b"q" * 10)
        status, _, body = read_response(sock, timeout=5)
    assert status == 408
    assert json.loads(body)["error"] == "Request timeout"


def test_a_kept_alive_connection_serves_several_requests(guarded_host: HostProcess) -> None:
    with connect(guarded_host) as sock:
        for _ in range(3):
            sock.sendall(b"GET /api/items/7 HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body = read_response(sock)
            assert status == 200
            assert json.loads(body)["route_params"] == {"id": "7"}
            time.sleep(0.5)


@pytest.mark.parametrize(
    "target",
    ["/api/items/%FF%FE", "/api/items/1?x=%FF", "/api/files/a%C3"],
)
def test_a_url_that_is_not_utf_8_is_refused_with_400(
    guarded_host: HostProcess, target: str
) -> None:
    with connect(guarded_host) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, headers, body = read_response(sock)
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"] == "Invalid URL"


def test_a_header_that_is_not_utf_8_is_refused_with_400(guarded_host: HostProcess) -> None:
    with connect(guarded_host) as sock:
        sock.sendall(b"GET /api/secret HTTP/1.1\r\nHost: x\r\nx-functions-key: \xff\xfe\r\n\r\n")
        status, _, body = read_response(sock)
    assert status == 400
    assert json.loads(body)["error"] == "Invalid header"


def test_an_over_long_url_with_a_key_leaves_no_key_in_the_log(guarded_host: HostProcess) -> None:
    key = guarded_host.function_key
    target = f"/api/secret?code={key}&pad={'a' * 20_000}"
    with connect(guarded_host) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, _, _ = read_response(sock)
    assert status == 400
    with connect(guarded_host) as sock:
        sock.sendall(f"GET /api/secret?code={key}x HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert read_response(sock)[0] == 401
    time.sleep(0.2)
    log = guarded_host.log()
    assert "Got more than" in log or "too long" in log.lower()  # the error was logged...
    assert key not in log  # ... without the key
    assert guarded_host.master_key not in log
