"""Benchmark: our light storage transport vs the Azure SDK's aio clients, on a fresh Azurite.

    .venv/bin/python bench/storage_transport.py [--n 500] [--batch-n 500]

For each operation, N calls are made sequentially (one in flight) with each client, in
alternating chunks (ours, SDK, ours, ...) so Azurite's own pauses hit both; we report
calls/s, wall ms per call and client CPU ms per call (time.process_time of this process; the
Azurite process is not counted), and the SDK/ours ratios. "queue receive+delete" counts one
receive of one message plus its delete as one call (two storage requests).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from azure.data.tables import UpdateMode  # noqa: E402
from azure.data.tables.aio import TableClient, TableServiceClient  # noqa: E402
from azure.storage.queue.aio import QueueClient  # noqa: E402

from orchestration.azure import (  # noqa: E402
    QueueService,
    StorageAccount,
    TableOperation,
    TableService,
)
from tests.integration.transport_fixture import azurite  # noqa: E402

WARMUP = 20


@dataclass
class Result:
    name: str
    impl: str
    n: int
    wall: float
    cpu: float

    @property
    def per_s(self) -> float:
        return self.n / self.wall

    @property
    def wall_ms(self) -> float:
        return 1000 * self.wall / self.n

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.n


ROUNDS = 5


async def compare(
    name: str,
    n: int,
    ours: Callable[[int], Awaitable[object]],
    sdk: Callable[[int], Awaitable[object]],
) -> list[Result]:
    """N calls with each client, interleaved in ROUNDS alternating chunks so that Azurite's
    own hiccups (persistence autosaves, growing queues) hit both sides alike."""
    calls = {"ours": ours, "sdk": sdk}
    totals = {impl: [0.0, 0.0] for impl in calls}
    for call in calls.values():
        for i in range(WARMUP):
            await call(-1 - i)
    done = 0
    for r in range(ROUNDS):
        chunk = n // ROUNDS + (1 if r < n % ROUNDS else 0)
        for impl, call in calls.items():
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for i in range(done, done + chunk):
                await call(i)
            totals[impl][0] += time.perf_counter() - wall0
            totals[impl][1] += time.process_time() - cpu0
        done += chunk
    return [Result(name, impl, n, wall, cpu) for impl, (wall, cpu) in totals.items()]


def entity(pk: str, i: int) -> dict[str, object]:
    return {"PartitionKey": pk, "RowKey": f"{i:08d}", "status": "Running", "n": i, "x": 1.5}


async def run(conn: str, n: int, batch_n: int) -> list[Result]:
    results: list[Result] = []
    account = StorageAccount.from_connection_string(conn)
    tables = TableService(account)
    queues = QueueService(account)
    sdk_service = TableServiceClient.from_connection_string(conn)
    try:
        for impl in ("ours", "sdk"):
            await tables.create_table(f"bench{impl}")
        sdk_table = TableClient.from_connection_string(conn, table_name="benchsdk")
        sdk_queue_send = QueueClient.from_connection_string(conn, "bench-sdk-send")
        sdk_queue_recv = QueueClient.from_connection_string(conn, "bench-sdk-recv")
        for q in ("bench-ours-send", "bench-ours-recv", "bench-sdk-send", "bench-sdk-recv"):
            await queues.create_queue(q)

        # table upsert
        async def ours_upsert(i: int) -> object:
            return await tables.upsert("benchours", entity("p", i))

        async def sdk_upsert(i: int) -> object:
            return await sdk_table.upsert_entity(entity("p", i), mode=UpdateMode.MERGE)

        results += await compare("table upsert", n, ours_upsert, sdk_upsert)

        # table get (entities written above)
        async def ours_get(i: int) -> object:
            return await tables.get_entity("benchours", "p", f"{abs(i):08d}")

        async def sdk_get(i: int) -> object:
            return await sdk_table.get_entity("p", f"{abs(i):08d}")

        results += await compare("table get", n, ours_get, sdk_get)

        # 100-entity batch (upserts into a fresh partition per call)
        async def ours_batch(i: int) -> object:
            pk = f"b{i}"
            ops = [TableOperation.upsert(entity(pk, j), mode="replace") for j in range(100)]
            return await tables.submit_transaction("benchours", ops)

        async def sdk_batch(i: int) -> object:
            pk = f"b{i}"
            ops = [("upsert", entity(pk, j), {"mode": UpdateMode.REPLACE}) for j in range(100)]
            return await sdk_table.submit_transaction(ops)  # type: ignore[arg-type]

        results += await compare("table batch of 100", batch_n, ours_batch, sdk_batch)

        # queue send
        body = "x" * 200

        async def ours_send(i: int) -> object:
            return await queues.send("bench-ours-send", body)

        async def sdk_send(i: int) -> object:
            return await sdk_queue_send.send_message(body)

        results += await compare("queue send", n, ours_send, sdk_send)

        # queue receive + delete, from queues pre-filled with n + warm-up messages
        for _ in range(n + WARMUP):
            await queues.send("bench-ours-recv", body)
            await queues.send("bench-sdk-recv", body)

        async def ours_recv(i: int) -> object:
            (msg,) = await queues.receive("bench-ours-recv", max_messages=1)
            await queues.delete("bench-ours-recv", msg.id, msg.pop_receipt)
            return msg

        async def sdk_recv(i: int) -> object:
            msg = await sdk_queue_recv.receive_message()
            assert msg is not None
            await sdk_queue_recv.delete_message(msg)
            return msg

        results += await compare("queue receive+delete", n, ours_recv, sdk_recv)

        await sdk_table.close()
        await sdk_queue_send.close()
        await sdk_queue_recv.close()
    finally:
        await sdk_service.close()
        print(f"\nour transport's storage calls: {account.stats}")
        await account.close()
    return results


def report(results: list[Result]) -> None:
    print(
        f"\n{'operation':<22} {'impl':<5} {'calls/s':>8} {'wall ms':>8} {'CPU ms':>7}"
        f" {'CPU sdk/ours':>13} {'speed ours/sdk':>15}"
    )
    by = {(r.name, r.impl): r for r in results}
    for r in results:
        extra = ""
        if r.impl == "sdk":
            ours = by[(r.name, "ours")]
            extra = f" {r.cpu_ms / ours.cpu_ms:>12.2f}x {ours.per_s / r.per_s:>14.2f}x"
        print(f"{r.name:<22} {r.impl:<5} {r.per_s:>8.0f} {r.wall_ms:>8.2f} {r.cpu_ms:>7.2f}{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="calls per single-entity operation")
    parser.add_argument("--batch-n", type=int, default=500, help="100-entity batches")
    parser.add_argument("--conn", help="use this storage instead of starting Azurite")
    args = parser.parse_args()
    print(f"run {uuid.uuid4().hex[:8]}: N={args.n}, batches={args.batch_n}, sequential")
    if args.conn:
        report(asyncio.run(run(args.conn, args.n, args.batch_n)))
        return
    with azurite() as conn:
        report(asyncio.run(run(conn, args.n, args.batch_n)))


if __name__ == "__main__":
    main()
