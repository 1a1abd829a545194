"""The transport's one retry policy.

What is retried (bounded: ``max_attempts`` tries in all, exponential backoff with jitter,
well under 10 s of sleeping in total):

- any request whose connection could not be *established* (nothing was sent);
- an idempotent request (reads, upserts, unconditional deletes, queue metadata, blob
  reads/writes) on a dropped connection, a timeout, or a 500/503 response;
- any request on 503 (the service refused it before doing anything: ServerBusy).

What is never retried blindly: a non-idempotent request -- an insert, a conditional (If-Match)
update or delete, an entity group transaction, a queue send / message delete / visibility
update -- that was sent but got no answer (timeout, connection dropped mid-request) or got a
500. Re-sending it could apply it twice, or turn its own success into a spurious 409/412/404.
The transport raises `OutcomeUnknown` (or `ServerBusy` for a 500) instead, so the caller can
read the state back and decide; the engine's commit protocol relies on seeing this.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay: float = 0.1
    multiplier: float = 4.0
    max_delay: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def delay(self, attempt: int) -> float:
        """Seconds to sleep after failed attempt number ``attempt`` (1-based)."""
        base = min(self.max_delay, self.base_delay * self.multiplier ** (attempt - 1))
        return base * (1.0 + self.jitter * (2.0 * random.random() - 1.0))

    def retry_status(self, status: int, idempotent: bool) -> bool:
        return status == 503 or (status == 500 and idempotent)


NO_RETRY = RetryPolicy(max_attempts=1)
