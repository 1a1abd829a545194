"""The Celery app of the Celery peer: its tasks, imported by the worker and by the callers.

The broker and result backend are both Redis (`BENCH_REDIS_URL`); tasks are acknowledged
after they run (`task_acks_late`), as a durable engine would.
"""

from __future__ import annotations

import os
import time

from celery import Celery


def make_app() -> Celery:
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    app = Celery("celery_tasks", broker=url, backend=url)
    app.conf.update(
        task_acks_late=True,
        worker_prefetch_multiplier=4,
        result_expires=600,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
    )
    return app


app = make_app()


@app.task(name="bench.inc")
def inc(x: int) -> int:
    return x + 1


@app.task(name="bench.total")
def total(values: list[int]) -> int:
    return sum(values)


@app.task(name="bench.late")
def late(due: float) -> float:
    """Seconds between the task's ETA (`due`, epoch seconds) and when it ran."""
    return time.time() - due
