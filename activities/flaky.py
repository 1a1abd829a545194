"""Retry with backoff: an operation that fails a given number of times per key."""

from __future__ import annotations

import threading
from typing import Any

import orchestration as df

bp = df.Blueprint()

_attempts: dict[str, int] = {}
_lock = threading.Lock()


class TransientError(RuntimeError):
    """A failure that goes away when retried."""


@bp.activity_trigger(input_name="call")
def flaky_operation(call: dict[str, Any]) -> dict[str, int]:
    """Fail the first `call["failures"]` attempts for `call["key"]`, then succeed.

    Attempts are counted in this process (activities may keep state, orchestrators may not).
    """
    with _lock:
        attempt = _attempts.get(call["key"], 0) + 1
        _attempts[call["key"]] = attempt
    if attempt <= call["failures"]:
        raise TransientError(f"attempt {attempt} failed")
    return {"attempts": attempt}
