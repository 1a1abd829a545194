"""The soak's judges (tests/soak/judge.py): memory that keeps growing after warm-up fails, memory
that levels off passes; throughput below the floor fails."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import pytest

from tests.soak import procs
from tests.soak.judge import (
    MIB,
    MemoryBound,
    judge_memory,
    judge_throughput,
    least_squares,
)

BOUND = MemoryBound(floor_mib=16, fraction=0.05)
WINDOW = (600.0, 1200.0)


def series(
    rss_at: Callable[[float], float], every: float = 10.0, end: float = 1200.0
) -> list[tuple[float, float]]:
    """Samples of rss_at(t) (KiB) every `every` s from 0 to `end`."""
    return [(t * every, float(rss_at(t * every))) for t in range(int(end / every) + 1)]


def test_the_least_squares_line_through_points_on_a_line_is_that_line() -> None:
    line = least_squares([(0.0, 5.0), (1.0, 7.0), (2.0, 9.0), (3.0, 11.0)])
    assert line.slope == pytest.approx(2.0)
    assert line.at(10.0) == pytest.approx(25.0)


def test_a_line_needs_two_distinct_times() -> None:
    with pytest.raises(ValueError):
        least_squares([(1.0, 5.0)])
    with pytest.raises(ValueError):
        least_squares([(1.0, 5.0), (1.0, 6.0)])


def test_memory_growing_steadily_after_warm_up_fails() -> None:
    # 2 MiB a minute on 80 MiB: 20 MiB over the 10-minute window, more than 16 MiB.
    growing = series(lambda t: 80 * MIB + 2 * MIB * t / 60)
    verdict = judge_memory("host-0", growing, WINDOW, BOUND)
    assert not verdict.ok
    assert verdict.growth_kib == pytest.approx(20 * MIB)
    assert verdict.slope_kib_per_min == pytest.approx(2 * MIB)
    assert "grew 20.0 MiB" in verdict.reason


def test_memory_that_levels_off_after_warm_up_passes_despite_noise_and_a_rise_before() -> None:
    rng = random.Random(3)

    def rss(t: float) -> float:
        warming = 40 * MIB * min(t, 500) / 500  # the warm-up's rise does not count
        return 80 * MIB + warming + rng.uniform(-3, 3) * MIB

    verdict = judge_memory("host-0", series(rss), WINDOW, BOUND)
    assert verdict.ok, verdict.line()
    assert verdict.warm_kib == pytest.approx(120 * MIB, rel=0.03)
    assert verdict.samples == 61


def test_a_single_late_spike_does_not_fail_a_flat_series() -> None:
    flat = series(lambda t: 100 * MIB + (30 * MIB if t == 1200 else 0))
    assert judge_memory("host-0", flat, WINDOW, BOUND).ok


def test_the_bound_is_a_fraction_of_a_large_warm_rss() -> None:
    assert BOUND.allowed_kib(100 * MIB) == 16 * MIB
    assert BOUND.allowed_kib(1000 * MIB) == pytest.approx(50 * MIB)
    # 40 MiB over the window on 1000 MiB: within 5%.
    big = series(lambda t: 1000 * MIB + 40 * MIB * max(t - 600, 0) / 600)
    assert judge_memory("host-0", big, WINDOW, BOUND).ok
    assert not judge_memory("host-0", big, WINDOW, MemoryBound(16, 0.02)).ok


def test_too_few_samples_in_the_window_fail() -> None:
    sparse = [(0.0, 1.0), (700.0, 1.0)]
    verdict = judge_memory("host-0", sparse, WINDOW, BOUND)
    assert not verdict.ok
    assert "1 sample(s)" in verdict.reason


def test_throughput_below_the_floor_fails_and_at_the_rate_passes() -> None:
    assert judge_throughput([(10.0, 50), (10.0, 48)], offered_per_s=5.0).ok
    slow = judge_throughput([(10.0, 30), (10.0, 35)], offered_per_s=5.0)
    assert not slow.ok
    assert slow.last_per_s == pytest.approx(3.25)
    assert not judge_throughput([], offered_per_s=5.0).ok


def test_a_process_tree_is_its_root_and_every_descendant() -> None:
    parent_of = {10: 1, 11: 10, 12: 10, 13: 11, 20: 1}
    assert procs.descendants(10, parent_of) == [11, 12, 13]
    assert procs.descendants(13, parent_of) == []


def test_this_process_is_measured_from_proc_and_a_missing_one_is_empty() -> None:
    tree = procs.tree_usage(os.getpid())
    assert tree.processes[0].pid == os.getpid()
    assert tree.rss_kib > 10 * MIB
    assert tree.fds > 0
    assert procs.tree_usage(None).rss_kib == 0
