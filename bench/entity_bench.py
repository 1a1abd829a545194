"""Durable entities on our engine: operations per second on one hot entity and over 100.

    .venv/bin/python bench/entity_bench.py [--out FILE] [--signals-each N] [--client-signals N]

runs only the entity workloads, on a fresh Azurite and the local host serving bench/app with
its shipped settings (the judged row's, "ours (host, HTTP start+wait)"), in about a minute;
`make bench` runs the same workloads in that row, after its chain, fan-out, latency and timer
workloads (bench/ours.py), and reports them beside them. Peers have no entities: ours only.

Four workloads, the bench app's `counter` entity ("add" 1, "get"), fresh keys each:

- orchestrations, one entity: ORCHESTRATIONS `entity_sender` orchestrations started at once
  through `POST /api/run/entity_sender` (the chain's start-and-wait route), each signalling
  the one entity SIGNALS_EACH times, then calling its "get" (which answers after its own
  signals: one sender's requests run in order); done when every orchestration has answered
  and, for each entity, the largest count answered is all that was sent to it (its last
  "get" saw every signal).
- orchestrations, 100 entities: the same, orchestration i on entity i % 100.
- clients, one entity / 100 entities: this process's `DurableOrchestrationClient` (same hub,
  same Azurite, as the "ours (host)" row's client) sends CLIENT_SIGNALS `signal_entity`
  "add" 1 at once (round robin over the entities), then polls `read_entity_state` until
  every entity's count is reached. (The client packs the signals it sends to one entity in
  one turn of its event loop into shared queue messages: a burst is its best case.)

Time runs from the first send to the moment the final count is confirmed; operations/s =
operations the entities ran (signals, and the orchestrations' "get" calls) / that time. Each
workload also reports CPU milliseconds per operation in the host, this process and Azurite,
storage calls per operation (the engine's, the host queue listeners' receives and deletes,
this client's), the entity worker's batches (operations per commit), and the control
queue's peak depth (Azurite's queue calls cost more the more messages it holds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from common import (  # noqa: E402
    ENTITY_GOAL,
    ENTITY_METRICS,
    ENTITY_PUBLISHED,
    ENTITY_SPREAD,
    EngineResult,
    cpu_seconds,
    install_sigterm_handler,
    run_main,
    stop_process,
)
from report import entity_table  # noqa: E402

from orchestration.client import DurableOrchestrationClient  # noqa: E402
from orchestration.core.entities import EntityId  # noqa: E402
from orchestration.storage.hub import TaskHub  # noqa: E402

ENTITY = "counter"
ORCHESTRATIONS = 100  # entity_sender orchestrations, started at once (one per spread entity)
SIGNALS_EACH = 100  # signals per orchestration, then one "get"
CLIENT_SIGNALS = 20000  # client.signal_entity calls, sent at once (the hub sends 64 at a time)
POLL_S = 0.01  # read_entity_state polling interval while the count is not reached
TIMEOUT_S = 30.0  # per workload
SETTLE_S = 15.0  # the most a workload waits for the control queue to empty before it starts
DEPTH_EVERY_S = 0.25  # the control queue's depth is sampled this often during a workload

# key (common.ENTITY_METRICS) -> (how many entities, who sends)
WORKLOADS: dict[str, tuple[int, str]] = {
    "entity_hot_orch": (1, "orchestrations"),
    "entity_spread_orch": (ENTITY_SPREAD, "orchestrations"),
    "entity_hot_client": (1, "clients"),
    "entity_spread_client": (ENTITY_SPREAD, "clients"),
}


@dataclass
class Probe:
    """How the workloads reach the host, and where CPU and storage calls are counted."""

    session: aiohttp.ClientSession
    base_url: str  # the host's, e.g. http://127.0.0.1:PORT/api
    client: DurableOrchestrationClient
    client_hub: TaskHub
    host_pid: int
    azurite_pid: int
    host_log: Path | None = None  # where a failed workload's cause is looked for

    def host_error(self, since: int) -> str | None:
        """The host log's last ERROR line after byte `since` (why a workload failed)."""
        if self.host_log is None:
            return None
        with self.host_log.open("rb") as log:
            log.seek(since)
            text = log.read().decode("utf-8", "replace")
        errors = [line for line in text.splitlines() if " ERROR " in line]
        # "... ERROR [pid] logger: Executed 'Functions.x' failed (Id=...): the error"
        return errors[-1].split(": ", 1)[-1].split("): ", 1)[-1] if errors else None

    def log_size(self) -> int:
        return self.host_log.stat().st_size if self.host_log is not None else 0

    async def stats(self, query: str = "") -> dict[str, int]:
        async with self.session.get(
            f"{self.base_url}/bench/stats{query}", timeout=aiohttp.ClientTimeout(total=10)
        ) as response:
            return dict(json.loads(await response.text()))

    async def run(self, name: str, arg: Any) -> Any:
        """Start `name` through the host's start-and-wait route; its output."""
        async with self.session.post(
            f"{self.base_url}/run/{name}", json=arg, timeout=aiohttp.ClientTimeout(total=150)
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"{name} answered {response.status}: {await response.text()}")
            return await response.json()

    async def depth(self) -> int:
        """The control queue's approximate message count (the client's `queue.count` calls
        are left out of its calls per operation)."""
        hub = self.client_hub
        return await hub.queues.approximate_count(hub.names.control_queue)

    async def settle(self) -> None:
        """Wait (bounded) until the control queue is empty: a workload starts on a drained
        queue, whatever the one before it left."""
        deadline = time.monotonic() + SETTLE_S
        while await self.depth() > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)

    def cpu(self) -> dict[str, float]:
        return {
            "host": cpu_seconds(self.host_pid),
            "client": time.process_time(),
            "azurite": cpu_seconds(self.azurite_pid),
        }


def keys_for(workload: str, count: int) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [f"{workload}-{run}-{i}" for i in range(count)]


async def by_orchestrations(probe: Probe, keys: list[str]) -> int:
    """ORCHESTRATIONS entity_sender orchestrations at once, orchestration i on keys[i % n];
    the operations run (signals and gets). Raises if a count is not what was sent."""
    targets = [keys[i % len(keys)] for i in range(ORCHESTRATIONS)]
    answers = await asyncio.gather(
        *(probe.run("entity_sender", {"key": k, "times": SIGNALS_EACH}) for k in targets)
    )
    expected = {k: SIGNALS_EACH * targets.count(k) for k in keys}
    seen: dict[str, int] = {}
    for key, answer in zip(targets, answers, strict=True):
        if int(answer) < SIGNALS_EACH:
            raise RuntimeError(f"a get on {key} answered {answer}: its own signals had not run")
        seen[key] = max(seen.get(key, 0), int(answer))
    wrong = {k: (seen.get(k), n) for k, n in expected.items() if seen.get(k) != n}
    if wrong:
        raise RuntimeError(f"final counts (seen, sent) differ: {dict(list(wrong.items())[:3])}")
    return ORCHESTRATIONS * (SIGNALS_EACH + 1)


async def by_clients(probe: Probe, keys: list[str]) -> int:
    """CLIENT_SIGNALS signals at once (round robin over `keys`), then poll each entity's
    state until its count is reached; the operations run."""
    client = probe.client
    targets = [keys[i % len(keys)] for i in range(CLIENT_SIGNALS)]
    await asyncio.gather(*(client.signal_entity(EntityId(ENTITY, k), "add", 1) for k in targets))
    expected = {k: targets.count(k) for k in keys}

    async def count(key: str) -> int:
        state = await client.read_entity_state(EntityId(ENTITY, key))
        return int(state.entity_state or 0) if state.entity_exists else 0

    pending = list(keys)
    while pending:
        # One entity polled while the counts grow; once it is done, all the rest at once.
        first = await count(pending[0])
        if first < expected[pending[0]]:
            await asyncio.sleep(POLL_S)
            continue
        if first > expected[pending[0]]:
            raise RuntimeError(f"{pending[0]} counted {first}, more than the {expected} sent")
        counts = await asyncio.gather(*(count(k) for k in pending[1:]))
        over = [k for k, c in zip(pending[1:], counts, strict=True) if c > expected[k]]
        if over:
            raise RuntimeError(f"{over[0]} counted more than was sent")
        pending = [k for k, c in zip(pending[1:], counts, strict=True) if c < expected[k]]
    return CLIENT_SIGNALS


async def measure(
    probe: Probe, name: str, work: Callable[[], Awaitable[int]]
) -> tuple[float, dict[str, Any]]:
    """Run one workload; (operations/s, its figures)."""
    await probe.settle()
    await probe.stats()
    await probe.stats("?listener=1")
    probe.client_hub.account.reset_stats()
    entities_before = await probe.stats("?entities=1")
    depths: list[int] = []

    async def sample() -> None:
        while True:
            await asyncio.sleep(DEPTH_EVERY_S)
            depths.append(await probe.depth())

    marks = probe.cpu()
    started = time.monotonic()
    sampler = asyncio.create_task(sample())
    try:
        operations = await asyncio.wait_for(work(), TIMEOUT_S)
    except TimeoutError as error:
        raise TimeoutError(f"not done within {TIMEOUT_S:.0f} s") from error
    finally:
        sampler.cancel()
    seconds = time.monotonic() - started
    used = {k: v - marks[k] for k, v in probe.cpu().items()}
    engine = await probe.stats()
    listener = await probe.stats("?listener=1")
    client = probe.client_hub.account.reset_stats()
    client.pop("queue.count", None)  # the depth samples
    entities = await probe.stats("?entities=1")
    batches = entities["batches"] - entities_before["batches"]
    ran = entities["operations"] - entities_before["operations"]

    def per_op(calls: dict[str, int]) -> float:
        return round(sum(calls.values()) / operations, 3)

    figures: dict[str, Any] = {
        "operations": operations,
        "seconds": round(seconds, 3),
        "ops_per_second": round(operations / seconds, 1),
        "cpu_ms_per_op": {k: round(v * 1000 / operations, 3) for k, v in used.items()},
        # CPU seconds per wall second: 1.0 is a saturated core (Azurite is one Node thread)
        "cores_busy": {k: round(v / seconds, 2) for k, v in used.items()},
        "engine_calls_per_op": per_op(engine),
        "listener_calls_per_op": per_op(listener),
        "client_calls_per_op": per_op(client),
        "entity_batches": batches,
        "ops_per_batch": round(ran / batches, 1) if batches else None,
        "control_queue_depth_max": max(depths, default=0),
        "engine_calls": dict(sorted(engine.items())),
        "listener_calls": dict(sorted(listener.items())),
        "client_calls": dict(sorted(client.items())),
    }
    return operations / seconds, figures


async def run_entities(result: EngineResult, probe: Probe) -> None:
    """Warm the entity path up, then the four workloads; figures into `result`."""
    try:
        warm = keys_for("warm", 2)
        await probe.run("entity_sender", {"key": warm[0], "times": 5})
        await probe.client.signal_entity(EntityId(ENTITY, warm[1]), "add", 1)
        while not (await probe.client.read_entity_state(EntityId(ENTITY, warm[1]))).entity_exists:
            await asyncio.sleep(POLL_S)
    except Exception as error:
        result.errors["entities"] = f"warm-up: {type(error).__name__}: {error}"[:300]
        result.save()
        return
    details = result.extra.setdefault("entities", {})
    details["setup"] = {
        "entity": "counter: add 1 / get",
        "orchestrations": f"{ORCHESTRATIONS} entity_sender at once (HTTP start+wait), each "
        f"{SIGNALS_EACH} signals then 1 call_entity get",
        "clients": f"{CLIENT_SIGNALS} client.signal_entity at once, then read_entity_state "
        f"every {POLL_S * 1000:.0f} ms until the count is reached",
        "published_reference": ENTITY_PUBLISHED,
        "goal_one_entity_ops_per_s": ENTITY_GOAL,
    }
    for key, (spread, senders) in WORKLOADS.items():
        label = f"entity ops/s, {ENTITY_METRICS[key]}"
        keys = keys_for(key, spread)

        async def work(keys: list[str] = keys, senders: str = senders) -> int:
            if senders == "orchestrations":
                return await by_orchestrations(probe, keys)
            return await by_clients(probe, keys)

        log_at = probe.log_size()
        try:
            rate, figures = await measure(probe, key, work)
        except Exception as error:
            cause = probe.host_error(log_at)
            because = f"; the host logged: {cause}" if cause else ""
            result.errors[key] = f"{type(error).__name__}: {error}{because}"[:400]
            result.save()
            print(f"[{result.engine}] {label} failed: {result.errors[key]}", flush=True)
            continue
        details[key] = figures
        result.metrics[key] = round(rate, 1)
        result.save()
        print(f"[{result.engine}] {label}: {rate:.0f} ops/s; {json.dumps(figures)}", flush=True)


async def standalone(result: EngineResult, workdir: Path) -> None:
    import ours  # the bench's host and Azurite helpers (ours imports this module)

    from orchestration.host.azurite import Azurite

    azurite = Azurite(workdir / "azurite")
    try:
        azurite.start()
    except Exception as error:
        result.unavailable(f"Azurite did not start: {error}")
        return
    assert azurite.pid is not None
    result.server_pids.append(azurite.pid)
    hub_name = f"Bench{uuid.uuid4().hex[:10]}"
    try:
        process, port = ours.start_host(azurite, hub_name, workdir, ours.APP_DIR)
        result.server_pids.append(process.pid)
        result.save()
        try:
            async with (
                ours.hub(azurite.connection_string, hub_name) as client_hub,
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
            ):
                probe = Probe(
                    session, f"http://127.0.0.1:{port}/api",
                    DurableOrchestrationClient(client_hub), client_hub, process.pid, azurite.pid,
                    workdir / "host.log",
                )  # fmt: skip
                await run_entities(result, probe)
        finally:
            stop_process(process, 20)
    finally:
        azurite.stop()


def main() -> int:
    global SIGNALS_EACH, CLIENT_SIGNALS
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "entities.json")
    parser.add_argument("--signals-each", type=int, default=SIGNALS_EACH,
                        help="signals per orchestration")  # fmt: skip
    parser.add_argument("--client-signals", type=int, default=CLIENT_SIGNALS,
                        help="signals per client burst")  # fmt: skip
    args = parser.parse_args()
    SIGNALS_EACH, CLIENT_SIGNALS = args.signals_each, args.client_signals
    install_sigterm_handler()
    result = EngineResult("ours (host, entities only)", args.out)
    settings = json.loads((HERE / "app" / "host.json").read_text())["extensions"]
    durable = {k: v for k, v in settings["durableTask"].items() if k != "hubName"}
    result.settings = {"durableTask": durable, "queues": settings["queues"], "only": "entities"}
    # The figures move with the machine's load (a 2-core machine shared with a test run
    # halves them): the load averages before and after go into the JSON.
    result.extra["loadavg"] = {"before": list(os.getloadavg())}
    result.save()
    with tempfile.TemporaryDirectory(prefix="bench-entities-") as tmp:
        asyncio.run(standalone(result, Path(tmp)))
    result.extra["loadavg"]["after"] = list(os.getloadavg())
    result.save()
    print("\n" + entity_table([result.to_json()]))
    print(f"load average before/after: {result.extra['loadavg']}")
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
