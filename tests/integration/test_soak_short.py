"""The soak run's short form (`make soak` is the full one, README "Reliability"): the same code,
2 hosts, one minute of mixed load at a lower rate.

A minute says little about a slow leak; what it checks is that under steady load every
workflow ends as expected, nothing is stuck or late, throughput keeps up, and the hosts'
memory stays within a looser bound than the full run's, max(24 MiB, 10% of the warm RSS)
over the last 30 s (their RSS still rises a few MiB a minute that early). That the memory
judge fails on growth is tested in tests/unit/test_soak_judge.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.soak.judge import MemoryBound
from tests.soak.report import summary, table
from tests.soak.run import Config, Soak

pytestmark = pytest.mark.integration


async def test_soak_short(tmp_path: Path) -> None:
    """2 hosts, 60 s at 2 workflows/s, the first 30 s warm-up, a sample every 5 s."""
    config = Config(
        hosts=2,
        minutes=1.0,
        warmup_minutes=0.5,
        period=5.0,
        rate=2.0,
        drain_seconds=60.0,
        throughput_seconds=30.0,
        memory_bound=MemoryBound(floor_mib=24, fraction=0.10),
        table_seconds=10.0,
        work_dir=tmp_path / "soak",
        json_path=tmp_path / "soak.json",
    )
    report = await Soak(config).run()
    print(table(report, config.table_seconds))
    print(summary(report))
    assert report.started == report.offered >= 100
    assert report.stuck == 0, report.stuck_ids
    assert report.late == 0, report.late_ids
    assert report.wrong == 0, report.verdict["problems"]
    assert report.verdict["completed_as_expected"] == report.started + report.sub_orchestrations
    assert all(m.ok and m.samples >= 6 for m in report.memory), [m.line() for m in report.memory]
    assert report.throughput is not None and report.throughput.ok
    assert report.failures == []
    assert report.ok
