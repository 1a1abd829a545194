"""Durable timer lateness through the local host, several rounds in one run.

The timer workload of `make bench` alone (200 workflows started at once over the bench app's
start-and-wait route, each sleeping a durable timer of 1-10 s; lateness = resumed minus due,
from the workflow's own clock), repeated, so that a change to how timers fire can be judged
on more than the one sample `make bench` takes. Prints one line a round and the median.

    .venv/bin/python bench/timer_bench.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import cpu_seconds, percentile, stop_process, timer_delays  # noqa: E402
from ours import APP_DIR, start_host  # noqa: E402

from orchestration.host.azurite import Azurite  # noqa: E402

WARMUP_CHAINS = 20


async def rounds(port: int, host_pid: int, azurite_pid: int, count: int) -> list[float]:
    url = f"http://127.0.0.1:{port}/api/run"
    p99s = []
    connector = aiohttp.TCPConnector(limit=0)  # all 200 waits open at once
    async with aiohttp.ClientSession(connector=connector) as session:

        async def run(name: str, arg: Any) -> Any:
            async with session.post(f"{url}/{name}", json=arg) as response:
                if response.status != 200:
                    raise RuntimeError(f"{name}: {response.status} {await response.text()}")
                return await response.json()

        for _ in range(WARMUP_CHAINS):
            await run("chain3", 0)
        await asyncio.sleep(1.0)
        for number in range(count):
            host_cpu, azurite_cpu = cpu_seconds(host_pid), cpu_seconds(azurite_pid)
            lateness = await asyncio.gather(*(run("sleeper", d) for d in timer_delays()))
            millis = sorted(float(late) * 1000 for late in lateness)
            p99s.append(percentile(millis, 99))
            print(
                f"round {number + 1}: lateness p50 {percentile(millis, 50):.2f} ms, "
                f"p99 {p99s[-1]:.2f} ms, max {millis[-1]:.2f} ms; CPU s: host "
                f"{cpu_seconds(host_pid) - host_cpu:.2f}, Azurite "
                f"{cpu_seconds(azurite_pid) - azurite_cpu:.2f}",
                flush=True,
            )
    return p99s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-timers-") as tmp:
        azurite = Azurite(Path(tmp) / "azurite")
        azurite.start()
        assert azurite.pid is not None
        try:
            started = time.monotonic()
            process, port = start_host(azurite, f"Timers{uuid.uuid4().hex[:8]}", Path(tmp), APP_DIR)
            try:
                p99s = asyncio.run(rounds(port, process.pid, azurite.pid, args.rounds))
            finally:
                stop_process(process, 20)
        finally:
            azurite.stop()
    print(
        f"timer lateness p99 over {len(p99s)} rounds: median {statistics.median(p99s):.2f} ms, "
        f"best {min(p99s):.2f}, worst {max(p99s):.2f} ({time.monotonic() - started:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
