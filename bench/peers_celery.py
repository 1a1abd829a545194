"""Celery 5 on Redis: a chain of 3 tasks, a chord for the fan-out, an ETA task as the timer.

    bench/.venv-peers/bin/python bench/peers_celery.py --out FILE

Starts `redis-server` (installed with apt-get when missing; append-only file on, for a
durable comparison) and a Celery worker (prefork, WORKER_CONCURRENCY processes) on free
loopback ports, and stops both at the end. Callers run in threads, each with its own Celery
app object (the Redis result consumer is not shared between threads).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
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
from workloads import Engine, run_all, use_threads

HERE = Path(__file__).resolve().parent
WORKER_CONCURRENCY = 2
RESULT_TIMEOUT = 120.0


def ensure_redis() -> str:
    """The path of redis-server, installing Debian's package when it is missing."""
    found = shutil.which("redis-server")
    if found:
        return found
    install = ["apt-get", "install", "-y", "-q", "redis-server"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    if subprocess.run(install, timeout=300, check=False, **quiet).returncode != 0:  # type: ignore[call-overload]
        subprocess.run(["apt-get", "update", "-q"], timeout=300, check=False, **quiet)  # type: ignore[call-overload]
        subprocess.run(install, timeout=300, check=False, **quiet)  # type: ignore[call-overload]
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("redis-server is not installed and apt-get could not install it")
    return found


class Callers:
    """One Celery app per calling thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def app(self) -> Any:
        app = getattr(self._local, "app", None)
        if app is None:
            from celery_tasks import make_app

            app = self._local.app = make_app()
        return app

    def sig(self, name: str, *args: Any) -> Any:
        return self.app.signature(name, args=args)


def engine(callers: Callers) -> Engine:
    from celery import chain as celery_chain
    from celery import chord

    def chain_sync() -> Any:
        c = callers
        flow = celery_chain(c.sig("bench.inc", 0), c.sig("bench.inc"), c.sig("bench.inc"))
        result = flow.apply_async().get(timeout=RESULT_TIMEOUT)
        assert result == 3, result
        return result

    def one_sync() -> Any:
        return callers.sig("bench.inc", 0).apply_async().get(timeout=RESULT_TIMEOUT)

    def fan_out_sync(n: int) -> Any:
        header = [callers.sig("bench.inc", i) for i in range(n)]
        result = chord(header, callers.sig("bench.total")).apply_async()
        value = result.get(timeout=RESULT_TIMEOUT)
        assert value == n * (n + 1) // 2, value
        return value

    def sleepers_sync(delays: list[float]) -> list[float]:
        now = time.time()
        results = [
            callers.sig("bench.late", now + d).apply_async(eta=datetime.fromtimestamp(now + d, UTC))
            for d in delays
        ]
        return [float(r.get(timeout=RESULT_TIMEOUT)) for r in results]

    async def chain() -> Any:
        return await asyncio.to_thread(chain_sync)

    async def one() -> Any:
        return await asyncio.to_thread(one_sync)

    async def fan_out(n: int) -> Any:
        return await asyncio.to_thread(fan_out_sync, n)

    async def sleepers(delays: list[float]) -> list[float]:
        return await asyncio.to_thread(sleepers_sync, delays)

    return Engine(chain, one, fan_out, sleepers)


def wait_worker(callers: Callers, worker: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"celery worker exited with code {worker.returncode}")
        if callers.app.control.ping(timeout=0.5):
            return
    raise TimeoutError("celery worker did not answer a ping")


async def _run(result: EngineResult, callers: Callers) -> None:
    use_threads()
    await run_all(result, engine(callers))


def bench(result: EngineResult, workdir: Path) -> None:
    try:
        redis_server = ensure_redis()
    except Exception as error:
        result.unavailable(str(error))
        return
    port = free_port()
    redis_args = [
        redis_server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
        "--appendonly", "yes", "--save", "", "--daemonize", "no", "--loglevel", "warning",
    ]  # fmt: skip
    redis_log = open(workdir / "redis.log", "wb")  # noqa: SIM115 - closed below
    redis = subprocess.Popen(
        redis_args,
        stdout=redis_log,
        stderr=subprocess.STDOUT,
        preexec_fn=dies_with_this_process(),
    )
    result.server_pids.append(redis.pid)
    worker = None
    try:
        wait_for_port(port, 20, redis)
        url = f"redis://127.0.0.1:{port}/0"
        os.environ["BENCH_REDIS_URL"] = url
        worker_args = [
            sys.executable, "-m", "celery", "-A", "celery_tasks", "worker",
            "--pool", "prefork", "--concurrency", str(WORKER_CONCURRENCY),
            "--without-heartbeat", "--without-gossip", "--without-mingle",
            "--loglevel", "WARNING",
        ]  # fmt: skip
        worker_log = open(workdir / "worker.log", "wb")  # noqa: SIM115 - lives as long as the worker
        worker = subprocess.Popen(
            worker_args,
            cwd=HERE,
            env={**os.environ, "PYTHONPATH": str(HERE)},
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=dies_with_this_process(),
        )
        result.server_pids.append(worker.pid)
        result.save()
        callers = Callers()
        wait_worker(callers, worker, 60)
        asyncio.run(_run(result, callers))
    except Exception as error:
        if not result.metrics:
            result.unavailable(f"{type(error).__name__}: {error}")
        raise
    finally:
        if worker is not None:
            stop_process(worker, 20)
        stop_process(redis, 20)
        redis_log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    install_sigterm_handler()
    result = EngineResult("celery (redis)", args.out)
    result.settings = {
        "worker": f"prefork x{WORKER_CONCURRENCY}",
        "task_acks_late": True,
        "redis": "appendonly yes (fsync everysec)",
        "fan_out": "chord",
        "timer": "apply_async(eta=...)",
    }
    result.save()
    with tempfile.TemporaryDirectory(prefix="bench-celery-") as tmp:
        bench(result, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
