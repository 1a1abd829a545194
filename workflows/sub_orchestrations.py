"""Sub-orchestrations: a parent runs one child orchestration per item."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import orchestration as df

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def process_batch(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Run `process_item` as a child for each of `{"items": [...]}` (ids `<parent>:item-<i>`)."""
    items = (context.get_input() or {}).get("items", [])
    children = [
        context.call_sub_orchestrator(
            "process_item", {"city": item}, instance_id=f"{context.instance_id}:item-{index}"
        )
        for index, item in enumerate(items)
    ]
    results = yield context.task_all(children)
    return {"processed": len(results), "results": results}


@bp.orchestration_trigger(context_name="context")
def process_item(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Greet one city (a small chain of its own) and report which parent ran it."""
    city = context.get_input()["city"]
    greeting = yield context.call_activity("say_hello", city)
    return {"item": city, "greeting": greeting, "parent": context.parent_instance_id}
