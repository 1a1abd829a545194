"""Test app: a timer firing every second, reporting each occurrence to a queue."""

from __future__ import annotations

import json
import os

import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(schedule="%TICK_SCHEDULE%", arg_name="timer")
@app.queue_output(arg_name="out", queue_name="%TICKS_QUEUE%", connection="AzureWebJobsStorage")
def tick(timer: func.TimerRequest, out: func.Out[str]) -> None:
    out.set(
        json.dumps(
            {
                "next": timer.schedule_status.get("Next"),
                "past_due": timer.past_due,
                "pid": os.getpid(),
            }
        )
    )


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=True)
@app.queue_output(arg_name="out", queue_name="%STARTUP_QUEUE%", connection="AzureWebJobsStorage")
def on_startup(timer: func.TimerRequest, out: func.Out[str]) -> None:
    out.set(json.dumps({"past_due": timer.past_due, "pid": os.getpid()}))
