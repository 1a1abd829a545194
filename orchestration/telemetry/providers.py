"""Finding what the app's OpenTelemetry provider gives this package, cheaply.

The API's `get_*_provider()` reads the environment on every call until the app sets a
provider (a few microseconds); the hot paths ask once per step and activity. So the answer
"no provider" is trusted for `RECHECK_SECONDS`, and a provider's product (a tracer, the
instruments) is kept until the app swaps the provider.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

RECHECK_SECONDS = 1.0


class ProviderLookup(Generic[T]):
    """`build(provider)` for the app's current provider; None while it has none."""

    def __init__(
        self,
        current: Callable[[], object],
        absent: tuple[type, ...],
        build: Callable[[object], T],
    ) -> None:
        self._current = current
        self._absent = absent
        self._build = build
        self._cached: tuple[object, T | None] | None = None
        self._none_until = 0.0

    def get(self) -> T | None:
        if self._none_until and time.monotonic() < self._none_until:
            return None
        provider = self._current()
        cached = self._cached
        if cached is not None and cached[0] is provider:
            found = cached[1]
        else:
            found = None if isinstance(provider, self._absent) else self._build(provider)
            self._cached = (provider, found)
        self._none_until = time.monotonic() + RECHECK_SECONDS if found is None else 0.0
        return found

    def forget(self) -> None:
        """Look the provider up again at the next call (tests that swap providers)."""
        self._cached, self._none_until = None, 0.0
