"""The bench's orchestrators, activity and entity, shared by the host app and the in-process
bench."""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import datetime, timedelta
from typing import Any

from orchestration.core import DurableOrchestrationContext
from orchestration.core.entities import DurableEntityContext, EntityId


def chain3(context: DurableOrchestrationContext) -> Generator[Any, Any, int]:
    """inc three times in a row."""
    x = context.get_input() or 0
    for _ in range(3):
        x = yield context.call_activity("inc", x)
    return int(x)


def one(context: DurableOrchestrationContext) -> Generator[Any, Any, int]:
    """A single activity."""
    return int((yield context.call_activity("inc", context.get_input() or 0)))


def fan_out(context: DurableOrchestrationContext) -> Generator[Any, Any, int]:
    """inc(0..n-1) in parallel, then the sum."""
    n = int(context.get_input())
    results = yield context.task_all([context.call_activity("inc", i) for i in range(n)])
    return int(sum(results))


def sleeper(context: DurableOrchestrationContext) -> Generator[Any, Any, float]:
    """A durable timer of `input` seconds; returns its lateness in seconds (workflow clock)."""
    due = context.current_utc_datetime + timedelta(seconds=float(context.get_input()))
    yield context.create_timer(due)
    resumed: datetime = context.current_utc_datetime
    return float((resumed - due).total_seconds())


def entity_sender(context: DurableOrchestrationContext) -> Generator[Any, Any, int]:
    """Signal counter `key` `times` times ("add", 1), then call its "get": the count it
    answers includes all of this orchestration's signals (one sender's requests run in the
    order sent)."""
    spec = context.get_input()
    target = EntityId("counter", str(spec["key"]))
    for _ in range(int(spec["times"])):
        context.signal_entity(target, "add", 1)
    return int((yield context.call_entity(target, "get")))


def inc(value: int) -> int:
    return value + 1


def counter(context: DurableEntityContext) -> None:
    """A counter entity, as Durable Functions' samples write it: "add" n, "get"."""
    value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        context.set_state(value + int(context.get_input()))
    elif operation == "get":
        context.set_result(value)


ORCHESTRATORS: dict[str, Callable[..., Any]] = {
    "chain3": chain3,
    "one": one,
    "fan_out": fan_out,
    "sleeper": sleeper,
    "entity_sender": entity_sender,
}
ACTIVITIES: dict[str, tuple[Callable[..., Any], str]] = {"inc": (inc, "value")}
ENTITIES: dict[str, Callable[..., Any]] = {"counter": counter}
