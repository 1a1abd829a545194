"""Retry policies for activities and sub-orchestrations, with Durable Functions' fields."""

from __future__ import annotations

from datetime import datetime, timedelta


class RetryOptions:
    """How often, and how far apart, a failed activity or sub-orchestration is retried.

    Same names and meaning as `azure.durable_functions.RetryOptions`: the first retry waits
    `first_retry_interval_in_milliseconds`; each later one waits `backoff_coefficient` times
    longer, capped at `max_retry_interval_in_milliseconds`; no attempt starts once
    `retry_timeout_in_milliseconds` has passed since the first. Waits are durable timers.
    """

    def __init__(
        self,
        first_retry_interval_in_milliseconds: int,
        max_number_of_attempts: int,
        backoff_coefficient: float = 1.0,
        max_retry_interval_in_milliseconds: int | None = None,
        retry_timeout_in_milliseconds: int | None = None,
    ) -> None:
        if first_retry_interval_in_milliseconds <= 0:
            raise ValueError("first_retry_interval_in_milliseconds must be greater than 0")
        if max_number_of_attempts < 1:
            raise ValueError("max_number_of_attempts must be at least 1")
        if backoff_coefficient < 1.0:
            raise ValueError("backoff_coefficient must be at least 1.0")
        self.first_retry_interval_in_milliseconds = first_retry_interval_in_milliseconds
        self.max_number_of_attempts = max_number_of_attempts
        self.backoff_coefficient = backoff_coefficient
        self.max_retry_interval_in_milliseconds = max_retry_interval_in_milliseconds
        self.retry_timeout_in_milliseconds = retry_timeout_in_milliseconds

    def next_delay(
        self, attempt: int, first_attempt_at: datetime, now: datetime
    ) -> timedelta | None:
        """The wait before attempt `attempt + 1`, or None when no retry is left.

        `attempt` counts the attempts made so far (1 after the first failure).
        """
        if attempt >= self.max_number_of_attempts:
            return None
        delay_ms = self.first_retry_interval_in_milliseconds * (
            self.backoff_coefficient ** (attempt - 1)
        )
        if self.max_retry_interval_in_milliseconds is not None:
            delay_ms = min(delay_ms, self.max_retry_interval_in_milliseconds)
        delay = timedelta(milliseconds=delay_ms)
        if self.retry_timeout_in_milliseconds is not None:
            deadline = first_attempt_at + timedelta(milliseconds=self.retry_timeout_in_milliseconds)
            if now + delay > deadline:
                return None
        return delay

    def to_json(self) -> dict[str, float | int | None]:
        return {
            "firstRetryIntervalInMilliseconds": self.first_retry_interval_in_milliseconds,
            "maxNumberOfAttempts": self.max_number_of_attempts,
            "backoffCoefficient": self.backoff_coefficient,
            "maxRetryIntervalInMilliseconds": self.max_retry_interval_in_milliseconds,
            "retryTimeoutInMilliseconds": self.retry_timeout_in_milliseconds,
        }
