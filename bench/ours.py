"""Our engine, on a fresh Azurite, in two shapes:

- `--mode host`: the realistic one. `python -m orchestration host --app-dir bench/app` (the
  local Functions host) runs the bench app's queue triggers; this process drives workflows
  with `DurableOrchestrationClient` (start_new, then wait_for_completion polling the
  instance's state row).
- `--mode inprocess`: the engine's BurstWorker in this process (no host), as
  bench/hub_bench.py does, with the same client.

    .venv/bin/python bench/ours.py --mode host|inprocess [--no-local-activities] --out FILE

`--http-wait` runs each workflow with `POST /api/run/{name}` on the host: the bench app's
starter calls `start_new` and `wait_for_completion_or_create_check_status_response`
(Durable Functions' start-and-wait pattern) and answers with the output. The host's engine
runs a new instance's first step at once, and the wait is woken by the engine's own commit.
Without it, this process starts instances with its own client (`start_new`, whose start
message the host's queue listener must poll) and polls their state rows.
`--no-local-activities` turns host.json's `localActivities` off, so every activity goes
through the work-item queue (the classic Durable Functions shape, and the scale-out path).
`--entities` (host mode) runs bench/entity_bench.py's durable-entity workloads after the
others, on the same host: ours only, the peers have no entities.

Besides the shared workloads it reports, for the 16-caller chain and the 1,000 fan-out, CPU
milliseconds per activity in our processes and in Azurite, and storage calls per activity
round trip: the engine's (counted by its transport: in the host through the bench app's
`/api/bench/stats`) and the client's (its start and its status polls), separately.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
APP_DIR = HERE / "app"
sys.path[:0] = [str(ROOT), str(APP_DIR)]

from bench_workflows import ACTIVITIES, ENTITIES, ORCHESTRATORS  # noqa: E402
from common import (  # noqa: E402
    EngineResult,
    cpu_seconds,
    dies_with_this_process,
    free_port,
    install_sigterm_handler,
    percentile,
    run_main,
    stop_process,
)
from entity_bench import Probe, run_entities  # noqa: E402
from workloads import Engine, run_all  # noqa: E402

from orchestration.client import DurableOrchestrationClient  # noqa: E402
from orchestration.functions.burst import BurstWorker  # noqa: E402
from orchestration.functions.registry import Registry  # noqa: E402
from orchestration.functions.settings import EngineSettings  # noqa: E402
from orchestration.host.azurite import Azurite  # noqa: E402
from orchestration.storage.hub import TaskHub  # noqa: E402

# Client polling interval (ms) of wait_for_completion, per workload: fast where one caller
# waits, slower where 16 callers would otherwise flood Azurite with status reads.
POLL_MS = {"one": 5, "chain_1": 5, "chain_16": 20, "fan_out": 10, "sleeper": 500}
INPROCESS_IDLE_SLEEP = 0.005  # the burst worker's pause after an empty poll
MEASURED = ("chain_16", "fanout_1000")  # workloads with CPU and storage-call figures
WAIT_MS = 120_000


@dataclass
class Counters:
    """Where our CPU and storage calls are counted."""

    azurite_pid: int
    client_hub: TaskHub
    host_pid: int | None = None
    stats_url: str | None = None
    engine_hub: TaskHub | None = None  # in-process: the worker's hub
    marks: dict[str, float] = field(default_factory=dict)
    workload: str = "chain_1"
    # Run workflows through the host's start-and-wait route (POST {runner}/{name}) instead
    # of this process's client: the host's engine then runs each new instance's first step
    # at once and answers when it completes.
    runner: str | None = None
    session: aiohttp.ClientSession | None = None

    async def run(self, name: str, arg: Any) -> Any:
        """Start `name` on the host and wait for its output."""
        assert self.runner is not None and self.session is not None
        async with self.session.post(
            f"{self.runner}/{name}", json=arg, timeout=aiohttp.ClientTimeout(total=150)
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"{name} answered {response.status}: {await response.text()}")
            return await response.json()

    async def engine_calls(self) -> dict[str, int]:
        if self.engine_hub is not None:
            return dict(self.engine_hub.account.reset_stats())
        assert self.stats_url is not None
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.stats_url, timeout=aiohttp.ClientTimeout(total=10)) as response,
        ):
            return dict(json.loads(await response.text()))

    def _cpu(self) -> dict[str, float]:
        ours = time.process_time()
        if self.host_pid is not None:
            return {
                "host": cpu_seconds(self.host_pid),
                "client": ours,
                "azurite": cpu_seconds(self.azurite_pid),
            }
        return {"bench process": ours, "azurite": cpu_seconds(self.azurite_pid)}

    async def before(self, name: str) -> None:
        self.workload = name
        if name in MEASURED:
            await self.engine_calls()
            self.client_hub.account.reset_stats()
            self.marks = self._cpu()
            self.marks["wall"] = time.monotonic()

    async def after(self, name: str, activities: int, result: EngineResult) -> None:
        self.workload = ""
        if name not in MEASURED:
            return
        wall = time.monotonic() - self.marks["wall"]
        used = {k: v - self.marks[k] for k, v in self._cpu().items()}
        cpu = {k: v * 1000 / activities for k, v in used.items()}
        engine = await self.engine_calls()
        client = self.client_hub.account.reset_stats()
        engine_total, client_total = sum(engine.values()), sum(client.values())
        figures: dict[str, Any] = {
            "activities": activities,
            "cpu_ms_per_activity": {k: round(v, 2) for k, v in cpu.items()},
            # CPU seconds per wall second: 1.0 is a saturated core (Azurite is one Node thread)
            "cores_busy": {k: round(v / wall, 2) for k, v in used.items()},
            "engine_calls_per_activity": round(engine_total / activities, 2),
            "client_calls_per_activity": round(client_total / activities, 2),
            "engine_calls": dict(sorted(engine.items())),
            "client_calls": dict(sorted(client.items())),
        }
        result.extra[name] = figures
        short = "chain" if name == "chain_16" else "fanout"
        result.metrics[f"cpu_ours_{short}"] = round(
            sum(v for k, v in cpu.items() if k != "azurite"), 2
        )
        result.metrics[f"cpu_azurite_{short}"] = round(cpu["azurite"], 2)
        result.metrics[f"calls_{short}"] = figures["engine_calls_per_activity"]
        result.save()
        print(f"[{result.engine}] {name}: {json.dumps(figures)}", flush=True)


def engine(
    client: DurableOrchestrationClient,
    counters: Counters,
    result: EngineResult,
    samples: list[tuple[str, float, float, float]],
) -> Engine:
    async def run(name: str, arg: Any, poll_ms: int) -> Any:
        if counters.runner is not None:
            return await counters.run(name, arg)
        began = time.time()
        instance_id = await client.start_new(name, None, arg)
        started = time.time()
        status = await client.wait_for_completion(instance_id, WAIT_MS, poll_ms)
        if status is None or status.runtime_status.value != "Completed":
            raise RuntimeError(f"{name} did not complete: {status and status.runtime_status}")
        if name == "one":
            samples.append((instance_id, began, started, time.time()))
        return status.output

    async def chain() -> Any:
        poll = POLL_MS["chain_16"] if counters.workload == "chain_16" else POLL_MS["chain_1"]
        value = await run("chain3", 0, poll)
        assert value == 3, value
        return value

    async def one() -> Any:
        return await run("one", 0, POLL_MS["one"])

    async def fan_out(n: int) -> Any:
        value = await run("fan_out", n, POLL_MS["fan_out"])
        assert value == n * (n + 1) // 2, value
        return value

    async def sleepers(delays: list[float]) -> list[float]:
        if counters.runner is not None:
            lateness = await asyncio.gather(*(counters.run("sleeper", d) for d in delays))
            return [float(late) for late in lateness]
        ids = await asyncio.gather(*(client.start_new("sleeper", None, d) for d in delays))
        lateness = []
        for instance_id in ids:
            status = await client.wait_for_completion(instance_id, WAIT_MS, POLL_MS["sleeper"])
            if status is None or status.runtime_status.value != "Completed":
                raise RuntimeError(f"sleeper {instance_id} did not complete")
            lateness.append(float(status.output))
        return lateness

    async def after(name: str, activities: int) -> None:
        await counters.after(name, activities, result)

    return Engine(chain, one, fan_out, sleepers, before=counters.before, after=after)


async def anatomy(
    client: DurableOrchestrationClient, samples: list[tuple[str, float, float, float]]
) -> dict[str, float]:
    """Where a 1-activity workflow's latency goes (medians, ms), from its recorded times:
    the client's start call; start -> first orchestrator step (queue pickup); first step ->
    completion commit (the engine's work); commit -> seen by the client's polling."""
    parts: dict[str, list[float]] = {"start_call": [], "pickup": [], "engine": [], "observe": []}
    for instance_id, began, started, observed in samples[-30:]:
        status = await client.get_status(instance_id, show_history=True)
        if status is None or not status.history:
            continue
        steps = [
            datetime.fromisoformat(e["Timestamp"]).timestamp()
            for e in status.history
            if e.get("EventType") == "OrchestratorStarted" and "Timestamp" in e
        ]
        if not steps:
            continue
        done = status.last_updated_time.timestamp()
        parts["start_call"].append(started - began)
        parts["pickup"].append(steps[0] - status.created_time.timestamp())
        parts["engine"].append(done - steps[0])
        parts["observe"].append(observed - done)
    return {k: round(percentile(v, 50) * 1000, 1) for k, v in parts.items() if v}


async def drive(
    result: EngineResult, client: DurableOrchestrationClient, counters: Counters
) -> None:
    samples: list[tuple[str, float, float, float]] = []
    await run_all(result, engine(client, counters, result, samples))
    with contextlib.suppress(Exception):
        parts = result.extra["latency_anatomy_ms_p50"] = await anatomy(client, samples)
        result.save()
        print(f"[{result.engine}] latency anatomy (ms, p50): {parts}")


def registry() -> Registry:
    reg = Registry()
    for name, function in ORCHESTRATORS.items():
        reg.add_orchestrator(name, function)
    for name, (function, input_name) in ACTIVITIES.items():
        reg.add_activity(name, function, input_name)
    for name, function in ENTITIES.items():
        reg.add_entity(name, function)
    return reg


@contextlib.asynccontextmanager
async def hub(connection_string: str, name: str) -> AsyncIterator[TaskHub]:
    task_hub = TaskHub.from_connection_string(connection_string, name)
    await task_hub.create_if_not_exists()
    try:
        yield task_hub
    finally:
        await task_hub.close()


async def run_inprocess(result: EngineResult, azurite: Azurite, hub_name: str, local: bool) -> None:
    assert azurite.pid is not None
    cs = azurite.connection_string
    async with hub(cs, hub_name) as client_hub, hub(cs, hub_name) as worker_hub:
        settings = EngineSettings(
            hub_name=hub_name, local_activities=local, local_activity_max_batch=1000
        )
        worker = BurstWorker(worker_hub, registry(), visibility_timeout=60, settings=settings)
        stop = asyncio.Event()

        async def stopped() -> bool:
            return stop.is_set()

        background = asyncio.create_task(
            worker.run_until(stopped, timeout=3600, idle_sleep=INPROCESS_IDLE_SLEEP)
        )
        counters = Counters(
            azurite.pid, client_hub, engine_hub=worker_hub,
        )  # fmt: skip
        try:
            await drive(result, DurableOrchestrationClient(client_hub), counters)
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(background, 30)


def app_dir(workdir: Path, local_activities: bool) -> Path:
    """bench/app itself, or a copy of it whose host.json turns local activities off."""
    if local_activities:
        return APP_DIR
    copy = workdir / "app"
    shutil.copytree(APP_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    config = json.loads((copy / "host.json").read_text())
    config["extensions"]["durableTask"]["localActivities"] = False
    (copy / "host.json").write_text(json.dumps(config, indent=2))
    return copy


def start_host(
    azurite: Azurite, hub_name: str, workdir: Path, app: Path
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "AzureWebJobsStorage": azurite.connection_string,
        "BENCH_HUB": hub_name,
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable, "-m", "orchestration", "host", "--app-dir", str(app),
        "--port", str(port), "--workers", "1", "--grace", "5", "--no-azurite",
    ]  # fmt: skip
    log_path = workdir / "host.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=dies_with_this_process(),
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while "Host started" not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            tail = log_path.read_text(errors="replace")[-800:]
            raise RuntimeError(f"the host did not start: {tail}")
        time.sleep(0.1)
    return process, port


async def run_host(
    result: EngineResult,
    azurite: Azurite,
    hub_name: str,
    workdir: Path,
    local: bool,
    http_wait: bool,
    entities: bool = False,
) -> None:
    assert azurite.pid is not None
    process, port = start_host(azurite, hub_name, workdir, app_dir(workdir, local))
    result.server_pids.append(process.pid)
    result.save()
    try:
        async with hub(azurite.connection_string, hub_name) as client_hub:
            counters = Counters(
                azurite.pid,
                client_hub,
                host_pid=process.pid,
                stats_url=f"http://127.0.0.1:{port}/api/bench/stats",
            )
            await counters.engine_calls()  # wires the host's engine before the warm-up
            # No cap on connections: the timer workload opens all its 200 waits at once, as
            # the peers start all their workflows at once (aiohttp's default caps at 100).
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as session:
                if http_wait:
                    counters.runner = f"http://127.0.0.1:{port}/api/run"
                    counters.session = session
                client = DurableOrchestrationClient(client_hub)
                await drive(result, client, counters)
                if entities:
                    base = f"http://127.0.0.1:{port}/api"
                    probe = Probe(
                        session, base, client, client_hub, process.pid, azurite.pid,
                        workdir / "host.log",
                    )  # fmt: skip
                    await run_entities(result, probe)
    finally:
        stop_process(process, 20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["host", "inprocess"], default="host")
    parser.add_argument(
        "--no-local-activities",
        dest="local",
        action="store_false",
        help="every activity goes through the work-item queue (localActivities: false)",
    )
    parser.add_argument(
        "--http-wait",
        action="store_true",
        help="host mode: run workflows through the host's start-and-wait HTTP route",
    )
    parser.add_argument(
        "--entities",
        action="store_true",
        help="host mode: the durable-entity workloads too, after the others",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    install_sigterm_handler()
    name = "ours (host" if args.mode == "host" else "ours (in-process"
    name += "" if args.local else ", queued activities"
    name += ", HTTP start+wait)" if args.http_wait and args.mode == "host" else ")"
    result = EngineResult(name, args.out)
    settings = json.loads((APP_DIR / "host.json").read_text())["extensions"]
    durable = {k: v for k, v in settings["durableTask"].items() if k != "hubName"}
    durable["localActivities"] = args.local
    result.settings = {
        "durableTask": durable,
        "client_poll_ms": POLL_MS,
        "start": "HTTP start+wait" if args.http_wait else "client.start_new + polling",
    }
    if args.mode == "host":
        result.settings["queues"] = settings["queues"]
    else:
        result.settings["burst_worker"] = {"idle_sleep_s": INPROCESS_IDLE_SLEEP, "batch": 32}
    result.save()
    hub_name = f"Bench{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory(prefix="bench-ours-") as tmp:
        azurite = Azurite(Path(tmp) / "azurite")
        try:
            azurite.start()
        except Exception as error:
            result.unavailable(f"Azurite did not start: {error}")
            return 0
        assert azurite.pid is not None
        result.server_pids.append(azurite.pid)
        result.save()
        try:
            if args.mode == "host":
                host = run_host(
                    result, azurite, hub_name, Path(tmp), args.local, args.http_wait, args.entities
                )
                asyncio.run(host)
            else:
                asyncio.run(run_inprocess(result, azurite, hub_name, args.local))
        finally:
            azurite.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
