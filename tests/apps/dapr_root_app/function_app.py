"""Dapr's paths exactly: host.json sets routePrefix "" and an anonymous management API."""

from __future__ import annotations

from typing import Any

import orchestration as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def greet(context: df.DurableOrchestrationContext) -> Any:
    name = yield context.call_activity("hello", context.get_input())
    return name


@app.activity_trigger(input_name="name")
def hello(name: str) -> str:
    return f"Hello {name}"
