"""Function chaining: greet one city."""

from __future__ import annotations

import orchestration as df

bp = df.Blueprint()


@bp.activity_trigger(input_name="city")
def say_hello(city: str) -> str:
    """Greet `city`."""
    return f"Hello {city}!"
