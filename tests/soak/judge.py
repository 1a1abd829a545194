"""The soak's verdicts, as pure functions of its samples: does memory level off after warm-up,
does throughput keep up with the offered rate.

Memory: a least-squares line through a host's RSS samples in the measuring window (after
warm-up, to the end of the load); its rise over the window must stay within the bound,
max(`floor_mib`, `fraction` of the warm RSS), the warm RSS being the line's value where the
window begins. A line, not last-minus-first, so one sample caught in the middle of an
allocation burst (or just after a collection) neither fails nor passes a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MIB = 1024  # KiB


@dataclass(frozen=True)
class MemoryBound:
    """How much a process's RSS may grow over the measuring window."""

    floor_mib: float = 16.0
    fraction: float = 0.05

    def allowed_kib(self, warm_kib: float) -> float:
        return max(self.floor_mib * MIB, self.fraction * warm_kib)

    def describe(self) -> str:
        return f"max({self.floor_mib:g} MiB, {self.fraction:.0%} of the warm RSS) over the window"


@dataclass(frozen=True)
class Line:
    """y = intercept + slope * x."""

    slope: float
    intercept: float

    def at(self, x: float) -> float:
        return self.intercept + self.slope * x


def least_squares(points: Sequence[tuple[float, float]]) -> Line:
    """The least-squares line through `points` (at least two distinct x values)."""
    n = len(points)
    if n < 2:
        raise ValueError("a line needs at least two points")
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        raise ValueError("a line needs points at two different times at least")
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    return Line(slope, mean_y - slope * mean_x)


@dataclass(frozen=True)
class MemoryVerdict:
    """One process's memory over the measuring window."""

    name: str
    samples: int
    window_seconds: float
    warm_kib: float
    end_kib: float
    slope_kib_per_min: float
    growth_kib: float
    allowed_kib: float
    ok: bool
    reason: str

    def line(self, judged: bool = True) -> str:
        text = (
            f"{self.name}: warm {self.warm_kib / MIB:.1f} MiB -> {self.end_kib / MIB:.1f} MiB "
            f"(fit) over {self.window_seconds / 60:.1f} min, slope "
            f"{self.slope_kib_per_min / MIB:+.2f} MiB/min, growth {self.growth_kib / MIB:+.1f} MiB"
        )
        if not judged:
            return text
        return (
            f"{text}, allowed {self.allowed_kib / MIB:.1f} MiB: {'ok' if self.ok else 'FAIL'}"
            + (f" ({self.reason})" if self.reason else "")
        )


def judge_memory(
    name: str,
    series: Sequence[tuple[float, float]],
    window: tuple[float, float],
    bound: MemoryBound,
    min_samples: int = 3,
) -> MemoryVerdict:
    """Judge `series` ((seconds, RSS KiB) samples) on the samples inside `window`."""
    begin, end = window
    inside = [(t, rss) for t, rss in series if begin <= t <= end]
    if len(inside) < min_samples or inside[-1][0] == inside[0][0]:
        return MemoryVerdict(
            name, len(inside), end - begin, 0.0, 0.0, 0.0, 0.0, 0.0, False,
            f"{len(inside)} sample(s) in the window, {min_samples} needed",
        )  # fmt: skip
    fit = least_squares(inside)
    warm, last = fit.at(begin), fit.at(end)
    growth = last - warm
    allowed = bound.allowed_kib(warm)
    ok = growth <= allowed
    return MemoryVerdict(
        name,
        len(inside),
        end - begin,
        warm,
        last,
        fit.slope * 60,
        growth,
        allowed,
        ok,
        "" if ok else f"grew {growth / MIB:.1f} MiB, more than {bound.describe()}",
    )


@dataclass(frozen=True)
class ThroughputVerdict:
    """Completions per second at the end of the load against the offered rate."""

    offered_per_s: float
    last_per_s: float
    seconds: float
    floor_fraction: float
    ok: bool

    def line(self) -> str:
        return (
            f"throughput over the last {self.seconds:.0f} s of load: {self.last_per_s:.2f}/s "
            f"(offered {self.offered_per_s:.2f}/s, floor {self.floor_fraction:.0%}): "
            f"{'ok' if self.ok else 'FAIL'}"
        )


def judge_throughput(
    periods: Sequence[tuple[float, int]], offered_per_s: float, floor_fraction: float = 0.8
) -> ThroughputVerdict:
    """`periods` are the last samples of the load, as (seconds, workflows completed)."""
    seconds = sum(s for s, _ in periods)
    done = sum(n for _, n in periods)
    rate = done / seconds if seconds > 0 else 0.0
    ok = seconds > 0 and rate >= floor_fraction * offered_per_s
    return ThroughputVerdict(offered_per_s, rate, seconds, floor_fraction, ok)
