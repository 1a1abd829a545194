"""The process model: one host process, or N worker processes (FUNCTIONS_WORKER_PROCESS_COUNT).

With N workers every process is a complete host: it serves HTTP on the same port through
SO_REUSEPORT (the kernel spreads connections), polls the queues as a competing consumer and
competes for the timer leases. So one blocked function never stalls the app, and the parent
only starts Azurite, spawns the workers, restarts a worker that dies, and stops them all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as MpEvent

from orchestration.host import event_loop
from orchestration.host.lifetime import die_with_parent
from orchestration.host.logs import configure_logging
from orchestration.host.runner import (
    FunctionHost,
    HostConfig,
    HostStartupError,
    ensure_azurite,
    prepare_environment,
)

log = logging.getLogger("orchestration.host")

WORKER_COUNT_SETTING = "FUNCTIONS_WORKER_PROCESS_COUNT"


def _worker_main(config: HostConfig, ready: MpEvent, supervisor_pid: int) -> None:
    # A worker must not outlive a supervisor killed outright: nobody would stop it, and it
    # would keep serving the port. The supervisor spawns from its main thread only, so the
    # kernel's "parent" (the forking thread) lives as long as the supervisor.
    die_with_parent(supervisor_pid)
    configure_logging()

    async def serve() -> None:
        host = FunctionHost(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await host.start()
        ready.set()
        try:
            await stop.wait()
        finally:
            await host.stop()

    try:
        event_loop.run(serve())
    except HostStartupError as err:
        log.error("Host start-up failed: %s", err)
        raise SystemExit(1) from None


def _check_port_free(bind: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((bind, port))
        except OSError as err:
            raise HostStartupError(f"cannot listen on {bind}:{port}: {err}") from err


def _supervise(config: HostConfig, count: int) -> int:
    _check_port_free(config.bind, config.port)
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    def spawn(index: int) -> tuple[BaseProcess, MpEvent]:
        ready = context.Event()
        worker_config = dataclasses.replace(config, reuse_port=True, print_banner=index == 0)
        process = context.Process(
            target=_worker_main,
            args=(worker_config, ready, os.getpid()),
            name=f"host-worker-{index}",
        )
        process.start()
        return process, ready

    workers = [spawn(i) for i in range(count)]
    while not all(ready.is_set() for _, ready in workers):
        if stop.is_set() or any(p.exitcode is not None for p, _ in workers):
            _terminate([p for p, _ in workers], config.grace)
            return 0 if stop.is_set() else 1
        time.sleep(0.05)
    log.info("%d worker processes ready: %s", count, [p.pid for p, _ in workers])
    while not stop.wait(0.5):
        for index, (process, _) in enumerate(workers):
            if process.exitcode is not None:
                log.error("Worker %d (pid %s) exited with %s; restarting it",
                          index, process.pid, process.exitcode)  # fmt: skip
                workers[index] = spawn(index)
    log.info("Shutting down %d workers", count)
    _terminate([p for p, _ in workers], config.grace)
    return 0


def _terminate(processes: list[BaseProcess], grace: float) -> None:
    for process in processes:
        if process.exitcode is None and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace + 5
    for process in processes:
        process.join(max(deadline - time.monotonic(), 0))
        if process.exitcode is None:
            process.kill()
            process.join()


def run_host(config: HostConfig) -> int:
    """Run the host until SIGINT/SIGTERM; the CLI's `host` command. Returns the exit code."""
    app_dir = config.app_dir.resolve()
    config = dataclasses.replace(config, app_dir=app_dir)
    azurite = None
    try:
        prepare_environment(app_dir)
        count = config.workers or int(os.environ.get(WORKER_COUNT_SETTING) or 1)
        if config.start_azurite:
            azurite = ensure_azurite(app_dir, install=config.install_azurite)
        if count <= 1:
            event_loop.run(FunctionHost(config).run_until_signal())
            return 0
        return _supervise(config, count)
    except HostStartupError as err:
        log.error("Host start-up failed: %s", err)
        return 1
    finally:
        if azurite is not None:
            azurite.stop()
            log.info("Stopped Azurite")
