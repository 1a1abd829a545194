"""Reads that only look for commits made elsewhere keep out of the way of timers due here."""

from __future__ import annotations

import pytest

from orchestration.storage.timer_windows import AFTER, BEFORE, MOST, TimerWindows


def test_a_read_far_from_any_timer_goes_at_once() -> None:
    windows = TimerWindows()
    windows.expect(10.0, 0.0)
    assert windows.quiet_delay(5.0) == 0.0
    assert windows.quiet_delay(10.0 + AFTER + 0.001) == 0.0


def test_a_read_just_before_a_timer_waits_until_just_after_it() -> None:
    windows = TimerWindows()
    windows.expect(10.0, 0.0)
    assert windows.quiet_delay(10.0 - BEFORE / 2) == pytest.approx(BEFORE / 2 + AFTER)
    assert windows.quiet_delay(10.0) == pytest.approx(AFTER)


def test_timers_due_in_a_row_are_waited_out_together_but_not_for_long() -> None:
    windows = TimerWindows()
    for n in range(3):
        windows.expect(10.0 + n * BEFORE / 2, 0.0)
    assert windows.quiet_delay(10.0) == pytest.approx(BEFORE + AFTER)
    for n in range(100):
        windows.expect(20.0 + n * BEFORE / 2, 0.0)
    assert windows.quiet_delay(20.0) == MOST


def test_timers_past_are_forgotten_by_reads_and_by_new_timers() -> None:
    windows = TimerWindows()
    for when in (1.0, 2.0, 3.0, 50.0):
        windows.expect(when, 0.0)
    windows.quiet_delay(10.0)
    assert len(windows) == 1
    for n in range(1000):  # a worker with no waits open never calls quiet_delay
        windows.expect(60.0 + n, 60.0 + n)
    assert len(windows) <= 2
