"""Function chaining: greet cities one after the other."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import orchestration as df

bp = df.Blueprint()

DEFAULT_CITIES = ("Tokyo", "Seattle", "London")


@bp.orchestration_trigger(context_name="context")
def hello_sequence(context: df.DurableOrchestrationContext) -> Generator[Any, Any, list[str]]:
    """Greet each city of the input (default Tokyo, Seattle, London) in order."""
    cities = context.get_input() or list(DEFAULT_CITIES)
    greetings: list[str] = []
    for city in cities:
        greetings.append((yield context.call_activity("say_hello", city)))
    return greetings
