"""A minimal local Azurite for the storage transport's tests and benchmark.

`azurite()` is a plain context manager (used by bench/storage_transport.py); `azurite_conn_str`
is the session-scoped pytest fixture built on it. Azurite runs on free loopback ports with its
data in a temporary directory (never --inMemoryPersistence, see DESIGN.md); on exit the process
is terminated and waited for, so its ports are free again afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from orchestration.host.lifetime import dies_with_this_process

REPO = Path(__file__).resolve().parents[2]
AZURITE_BIN = REPO / "node_modules" / ".bin" / "azurite"
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _wait_port(port: int, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"azurite exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"azurite did not listen on port {port} in time")


def connection_string(blob: int, queue: int, table: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{blob}/{DEV_ACCOUNT};"
        f"QueueEndpoint=http://127.0.0.1:{queue}/{DEV_ACCOUNT};"
        f"TableEndpoint=http://127.0.0.1:{table}/{DEV_ACCOUNT};"
    )


@contextmanager
def azurite() -> Iterator[str]:
    """Start Azurite on free ports in a temp dir; yield its full connection string."""
    if not AZURITE_BIN.exists():
        raise RuntimeError(f"{AZURITE_BIN} not found: run `make setup`")
    location = tempfile.mkdtemp(prefix="azurite-transport-")
    blob, queue, table = _free_ports(3)
    log = open(os.path.join(location, "azurite.out"), "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            str(AZURITE_BIN),
            "--location",
            location,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(blob),
            "--queueHost",
            "127.0.0.1",
            "--queuePort",
            str(queue),
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            str(table),
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=location,
        preexec_fn=dies_with_this_process(),
    )
    try:
        deadline = time.monotonic() + 30
        for port in (blob, queue, table):
            _wait_port(port, proc, deadline)
        yield connection_string(blob, queue, table)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        shutil.rmtree(location, ignore_errors=True)


@pytest.fixture(scope="session")
def azurite_conn_str() -> Iterator[str]:
    with azurite() as conn:
        yield conn
