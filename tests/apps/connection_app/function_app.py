"""Test app: queue bindings whose `connection` names a setting other than AzureWebJobsStorage."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp()


@app.queue_trigger(arg_name="msg", queue_name="%IN_QUEUE%", connection="OtherStorage")
@app.queue_output(arg_name="out", queue_name="%OUT_QUEUE%", connection="OtherStorage")
def relay(msg: str, out: func.Out[str]) -> None:
    out.set(msg.upper())
