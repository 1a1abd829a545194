"""Test app: queue triggers (copying to an output queue, always failing) and queue output."""

from __future__ import annotations

import json
import logging
import os
import time

import azure.functions as func

app = func.FunctionApp()


@app.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="out", queue_name="%RESULTS_QUEUE%", connection="AzureWebJobsStorage")
def copy_work(msg: func.QueueMessage, out: func.Out[str]) -> None:
    out.set(
        json.dumps(
            {
                "body": msg.get_body().decode(),
                "id": msg.id,
                "dequeue_count": msg.dequeue_count,
                "inserted": msg.insertion_time.isoformat() if msg.insertion_time else None,
                "expires": msg.expiration_time.isoformat() if msg.expiration_time else None,
                "has_pop_receipt": bool(msg.pop_receipt),
                "pid": os.getpid(),
            }
        )
    )


@app.queue_trigger(arg_name="msg", queue_name="%SLOW_QUEUE%", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="out", queue_name="%RESULTS_QUEUE%", connection="AzureWebJobsStorage")
def slow_copy(msg: func.QueueMessage, out: func.Out[str]) -> None:
    logging.info("slow_copy started")
    time.sleep(2)
    out.set(json.dumps({"body": msg.get_body().decode(), "pid": os.getpid()}))


@app.queue_trigger(arg_name="msg", queue_name="%FAIL_QUEUE%", connection="AzureWebJobsStorage")
def always_fails(msg: func.QueueMessage) -> None:
    raise ValueError(f"cannot handle {msg.get_body().decode()} (attempt {msg.dequeue_count})")
