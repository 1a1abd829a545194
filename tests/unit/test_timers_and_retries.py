"""Durable timers of any length, and retries that wait on durable timers."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from orchestration.core import (
    CreateTimer,
    DurableOrchestrationContext,
    OrchestrationRuntimeStatus,
    RetryOptions,
    TaskFailedError,
)
from tests.unit.simulation import T0, Simulation, run

Context = DurableOrchestrationContext
SEVEN_DAYS = timedelta(days=7)


def thirty_day_wait(ctx: Context) -> Any:
    fire_at = ctx.current_utc_datetime + timedelta(days=30)
    yield ctx.create_timer(fire_at)
    return ctx.current_utc_datetime.isoformat()


def test_a_30_day_timer_is_chained_from_timers_within_the_backend_limit() -> None:
    sim, instance = run(thirty_day_wait, max_timer_interval=SEVEN_DAYS)
    timers = [a for r in instance.results for a in r.actions if isinstance(a, CreateTimer)]
    assert len(timers) == 5  # 7 + 7 + 7 + 7 + 2 days
    starts = [T0] + [t.fire_at for t in timers[:-1]]
    assert all(
        t.fire_at - s <= SEVEN_DAYS + timedelta(seconds=1)
        for t, s in zip(timers, starts, strict=False)
    )
    assert timers[-1].fire_at >= T0 + timedelta(days=30)
    assert instance.status is OrchestrationRuntimeStatus.Completed
    assert sim.now >= T0 + timedelta(days=30)


def test_the_orchestrator_sees_one_timer_however_many_legs_it_takes() -> None:
    resumed: list[str] = []

    def orchestrator(ctx: Context) -> Any:
        timer = ctx.create_timer(ctx.current_utc_datetime + timedelta(days=30))
        yield timer
        resumed.append(ctx.current_utc_datetime.isoformat())
        return timer.is_completed

    _, instance = run(orchestrator, max_timer_interval=SEVEN_DAYS)
    assert instance.output is True
    assert len(set(resumed)) == 1


def test_without_a_backend_limit_a_long_timer_is_one_timer() -> None:
    _, instance = run(thirty_day_wait)
    timers = [a for r in instance.results for a in r.actions if isinstance(a, CreateTimer)]
    assert len(timers) == 1


def test_a_monitor_loop_of_timers_runs_until_done() -> None:
    def monitor(ctx: Context) -> Any:
        polls = 0
        while True:
            polls += 1
            status = yield ctx.call_activity("check", polls)
            if status == "done":
                return polls
            yield ctx.create_timer(ctx.current_utc_datetime + timedelta(minutes=5))

    _, instance = run(monitor, activities={"check": lambda n: "done" if n >= 4 else "busy"})
    assert instance.output == 4


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, value: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"attempt {self.calls} failed")
        return f"ok after {self.calls}"


def test_call_activity_with_retry_retries_after_durable_timers() -> None:
    options = RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=5)
    options.backoff_coefficient = 2.0

    def orchestrator(ctx: Context) -> Any:
        result = yield ctx.call_activity_with_retry("flaky", options, "x")
        return result

    flaky = Flaky(failures=2)
    _sim, instance = run(orchestrator, activities={"flaky": flaky})
    assert instance.output == "ok after 3"
    timers = [a for r in instance.results for a in r.actions if isinstance(a, CreateTimer)]
    assert len(timers) == 2
    waits = [
        timers[0].fire_at - instance.history[0].timestamp,
        timers[1].fire_at - timers[0].fire_at,
    ]
    assert waits[0] >= timedelta(seconds=1)
    assert waits[1] >= timedelta(seconds=2)


def test_retries_give_up_after_max_attempts_with_the_last_error() -> None:
    options = RetryOptions(100, 3)

    def orchestrator(ctx: Context) -> Any:
        try:
            yield ctx.call_activity_with_retry("flaky", options)
        except TaskFailedError as error:
            return error.failure.message
        return "no"

    flaky = Flaky(failures=10)
    _, instance = run(orchestrator, activities={"flaky": flaky})
    assert flaky.calls == 3
    assert instance.output == "attempt 3 failed"


def test_retry_timeout_stops_retrying() -> None:
    options = RetryOptions(60_000, 10, retry_timeout_in_milliseconds=150_000)

    def orchestrator(ctx: Context) -> Any:
        try:
            yield ctx.call_activity_with_retry("flaky", options)
        except TaskFailedError:
            return "gave up"
        return "no"

    flaky = Flaky(failures=10)
    _, instance = run(orchestrator, activities={"flaky": flaky})
    assert instance.output == "gave up"
    assert flaky.calls == 3


def test_sub_orchestrator_with_retry_starts_a_new_child_per_attempt() -> None:
    def child(ctx: Context) -> Any:
        if ctx.instance_id == "kid":
            raise RuntimeError("child failed")
        return "child ok"

    def parent(ctx: Context) -> Any:
        result = yield ctx.call_sub_orchestrator_with_retry(
            "child", RetryOptions(500, 3), None, "kid"
        )
        return result

    sim = Simulation({"parent": parent, "child": child})
    instance = sim.start("parent")
    sim.run()
    assert instance.output == "child ok"
    assert sim.instances["kid"].status is OrchestrationRuntimeStatus.Failed
    assert sim.instances["kid:retry1"].status is OrchestrationRuntimeStatus.Completed


@pytest.mark.parametrize(
    ("attempt", "expected_ms"),
    [(1, 1000), (2, 2000), (3, 4000), (4, 5000), (5, None)],
)
def test_retry_options_backoff_is_capped_and_bounded(attempt: int, expected_ms: int | None) -> None:
    options = RetryOptions(
        1000, 5, backoff_coefficient=2.0, max_retry_interval_in_milliseconds=5000
    )
    delay = options.next_delay(attempt, T0, T0)
    assert delay == (None if expected_ms is None else timedelta(milliseconds=expected_ms))


def test_retry_options_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="max_number_of_attempts"):
        RetryOptions(1000, 0)
    with pytest.raises(ValueError, match="first_retry_interval"):
        RetryOptions(0, 3)


def test_replay_safe_logger_logs_each_message_once(caplog: pytest.LogCaptureFixture) -> None:
    def orchestrator(ctx: Context) -> Any:
        log = ctx.create_replay_safe_logger(logging.getLogger("user.orders"))
        log.info("starting %s", ctx.instance_id)
        for i in range(3):
            yield ctx.call_activity("step", i)
            ctx.logger.info("finished step %d", i)
        return None

    with caplog.at_level(logging.INFO):
        sim = Simulation({"main": orchestrator}, {"step": lambda x: x})
        sim.start("main")
        sim.run()
    messages = [r.getMessage() for r in caplog.records if r.name.startswith(("user", "orch"))]
    # Every step also runs a full replay (the simulation checks both paths): still once each.
    assert messages.count("starting instance-1") == 2
    assert messages.count("finished step 0") == 2
