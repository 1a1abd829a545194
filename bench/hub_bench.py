"""Task hub benchmark: activity round trips per second and storage calls per round trip.

Runs the engine's workers in this process (the burst worker, as the Functions host would run
the queue triggers) against a fresh Azurite it starts itself, for:
- a 100-step chain on one instance (sequential activity round trips),
- a 1,000-wide fan-out/fan-in on one instance,
and prints round trips per second, storage calls per round trip (counted by the transport),
and the CPU seconds spent in this process and in Azurite.

    .venv/bin/python bench/hub_bench.py [--chain 100] [--fan-out 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestration.client import DurableOrchestrationClient  # noqa: E402
from orchestration.core import DurableOrchestrationContext  # noqa: E402
from orchestration.functions.burst import BurstWorker  # noqa: E402
from orchestration.functions.registry import Registry  # noqa: E402
from orchestration.host.azurite import Azurite  # noqa: E402
from orchestration.storage.hub import TaskHub  # noqa: E402


def chain(ctx: DurableOrchestrationContext) -> Any:
    x = 0
    for _ in range(ctx.get_input()):
        x = yield ctx.call_activity("inc", x)
    return x


def fan_out(ctx: DurableOrchestrationContext) -> Any:
    results = yield ctx.task_all([ctx.call_activity("inc", i) for i in range(ctx.get_input())])
    return sum(results)


def inc(value: int) -> int:
    return value + 1


def registry() -> Registry:
    reg = Registry()
    reg.add_orchestrator("chain", chain)
    reg.add_orchestrator("fan_out", fan_out)
    reg.add_activity("inc", inc, "value")
    return reg


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0


async def run_workload(hub: TaskHub, name: str, size: int, azurite_pid: int) -> dict[str, Any]:
    client = DurableOrchestrationClient(hub)
    worker = BurstWorker(hub, registry(), visibility_timeout=120)
    hub.account.reset_stats()
    cpu_before, az_before = time.process_time(), cpu_seconds(azurite_pid)
    started = time.perf_counter()
    instance_id = await client.start_new(name, None, size)

    async def done() -> bool:
        status = await client.get_status(instance_id)
        return status is not None and status.runtime_status.is_terminal

    await worker.run_until(done, timeout=600, idle_sleep=0.001)
    elapsed = time.perf_counter() - started
    status = await client.get_status(instance_id)
    expected = size if name == "chain" else sum(range(1, size + 1))
    if status is None or status.output != expected:
        raise SystemExit(f"{name} did not complete correctly: {status}")
    calls = hub.account.reset_stats()
    total_calls = sum(calls.values())
    return {
        "workload": f"{name} {size}",
        "seconds": round(elapsed, 3),
        "round_trips_per_s": round(size / elapsed, 1),
        "storage_calls": total_calls,
        "calls_per_round_trip": round(total_calls / size, 2),
        "cpu_ms_per_round_trip_ours": round((time.process_time() - cpu_before) * 1000 / size, 2),
        "cpu_ms_per_round_trip_azurite": round(
            (cpu_seconds(azurite_pid) - az_before) * 1000 / size, 2
        ),
        "calls": dict(sorted(calls.items())),
        "steps": worker.orchestrators.stats.steps,
    }


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        azurite = Azurite(Path(tmp))
        azurite.start()
        try:
            pid = azurite.pid
            assert pid is not None
            for name, size in (("chain", args.chain), ("fan_out", args.fan_out)):
                hub = TaskHub.from_connection_string(
                    azurite.connection_string, f"Bench{uuid.uuid4().hex[:8]}"
                )
                await hub.create_if_not_exists()
                try:
                    rows.append(await run_workload(hub, name, size, pid))
                finally:
                    await hub.close()
        finally:
            azurite.stop()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chain", type=int, default=100)
    parser.add_argument("--fan-out", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hub.json")
    args = parser.parse_args()
    rows = asyncio.run(main_async(args))
    print(f"{'workload':<16}{'s':>8}{'rt/s':>9}{'calls/rt':>10}{'cpu ms/rt':>11}{'azurite':>9}")
    for row in rows:
        print(
            f"{row['workload']:<16}{row['seconds']:>8}{row['round_trips_per_s']:>9}"
            f"{row['calls_per_round_trip']:>10}{row['cpu_ms_per_round_trip_ours']:>11}"
            f"{row['cpu_ms_per_round_trip_azurite']:>9}"
        )
        print(f"   calls: {json.dumps(row['calls'])}  steps: {row['steps']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
