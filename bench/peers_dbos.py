"""DBOS (durable workflows in the caller's process) on SQLite or PostgreSQL.

    bench/.venv-peers/bin/python bench/peers_dbos.py --db sqlite|postgres --out FILE

Workflows run in this process's DBOS executor threads; steps are checkpointed in the system
database. The fan-out enqueues one `inc` per item on a DBOS queue (polled every
QUEUE_POLL_S) and waits on the handles. PostgreSQL 15 is started from
/usr/lib/postgresql/15/bin on a free port (as user `postgres` when run as root) and stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import EngineResult, free_port, install_sigterm_handler, run_main
from dbos import DBOS, DBOSConfig, Queue
from workloads import Engine, run_all, use_threads

PG_BIN = Path("/usr/lib/postgresql/15/bin")
QUEUE_POLL_S = 0.05
_queue: list[Queue] = []


@DBOS.step()
def inc(x: int) -> int:
    return x + 1


@DBOS.step()
def now() -> float:
    return time.time()


@DBOS.workflow()
def chain3(x: int) -> int:
    return inc(inc(inc(x)))


@DBOS.workflow()
def one(x: int) -> int:
    return inc(x)


@DBOS.workflow()
def fan_out(n: int) -> int:
    handles = [_queue[0].enqueue(inc, i) for i in range(n)]
    return sum(h.get_result() for h in handles)


@DBOS.workflow()
def sleeper(seconds: float) -> float:
    due = now() + seconds
    DBOS.sleep(seconds)
    return now() - due


def _pg(user: str | None, *args: str) -> list[str]:
    return ["runuser", "-u", user, "--", *args] if user else list(args)


@contextlib.contextmanager
def postgres(workdir: Path, result: EngineResult) -> Iterator[str]:
    """A throwaway PostgreSQL 15 on a free loopback port; its URL. Stopped (waited) after."""
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"{PG_BIN} not found")
    user = "postgres" if os.geteuid() == 0 else None
    data = workdir / "pgdata"
    data.mkdir()
    if user:
        shutil.chown(workdir, user)
        shutil.chown(data, user)
    port = free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "timeout": 60}
    subprocess.run(
        _pg(user, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"),
        check=True,
        **quiet,  # type: ignore[arg-type]
    )
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=on"
    pg_ctl = str(PG_BIN / "pg_ctl")
    log = str(workdir / "postgres.log")
    subprocess.run(
        _pg(user, pg_ctl, "-D", str(data), "-o", options, "-l", log, "-w", "-t", "30", "start"),
        check=True,
        **quiet,  # type: ignore[arg-type]
    )
    with contextlib.suppress(OSError, ValueError, IndexError):
        result.server_pids.append(int((data / "postmaster.pid").read_text().split()[0]))
        result.save()
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/dbos_bench"
    finally:
        subprocess.run(
            _pg(user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop"),
            check=False,
            **quiet,  # type: ignore[arg-type]
        )


def engine() -> Engine:
    async def chain() -> Any:
        return await asyncio.to_thread(lambda: DBOS.start_workflow(chain3, 0).get_result())

    async def one_() -> Any:
        return await asyncio.to_thread(lambda: DBOS.start_workflow(one, 0).get_result())

    async def fan_out_(n: int) -> Any:
        result = await asyncio.to_thread(lambda: DBOS.start_workflow(fan_out, n).get_result())
        assert result == n * (n + 1) // 2, result
        return result

    async def sleepers(delays: list[float]) -> list[float]:
        def run() -> list[float]:
            handles = [DBOS.start_workflow(sleeper, d) for d in delays]
            return [h.get_result() for h in handles]

        return await asyncio.to_thread(run)

    return Engine(chain, one_, fan_out_, sleepers)


async def _run(result: EngineResult) -> None:
    use_threads()
    await run_all(result, engine())


def bench(result: EngineResult, url: str) -> None:
    config: DBOSConfig = {"name": "bench", "system_database_url": url, "log_level": "WARNING"}
    DBOS(config=config)
    DBOS.launch()
    try:
        _queue.append(DBOS.register_queue("fan", polling_interval_sec=QUEUE_POLL_S))
        asyncio.run(_run(result))
    finally:
        DBOS.destroy(workflow_completion_timeout_sec=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    install_sigterm_handler()
    result = EngineResult(f"dbos ({args.db})", args.out)
    result.settings = {"queue_polling_interval_sec": QUEUE_POLL_S, "workflows": "in-process"}
    with tempfile.TemporaryDirectory(prefix="bench-dbos-") as tmp:
        workdir = Path(tmp)
        if args.db == "sqlite":
            bench(result, f"sqlite:///{workdir / 'dbos.sqlite'}")
            return 0
        try:
            stack = postgres(workdir, result)
            url = stack.__enter__()
        except Exception as error:
            result.unavailable(f"PostgreSQL did not start: {error}")
            return 0
        try:
            bench(result, url)
        finally:
            stack.__exit__(*sys.exc_info())
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
