"""Draw bench/results/bench.json as a PNG: one panel of bars per workload, one bar per engine.

    bench/.venv-peers/bin/python bench/chart.py bench/results/bench.json bench/results/bench.png

Runs in the peers' venv (matplotlib). A panel uses a log scale when its largest bar is more
than 20 times its smallest.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLUMNS = 4


def draw(data: dict[str, Any], out: Path) -> None:
    engines = [e for e in data["engines"] if e.get("metrics")]
    names = [e["engine"] for e in engines]
    palette = plt.get_cmap("tab10")
    colors = {name: palette(i % 10) for i, name in enumerate(names)}
    workloads = list(data["comparison"].items())
    rows = (len(workloads) + COLUMNS - 1) // COLUMNS
    figure, axes = plt.subplots(rows, COLUMNS, figsize=(4.2 * COLUMNS, 3.6 * rows), squeeze=False)
    for index, (key, entry) in enumerate(workloads):
        axis = axes[index // COLUMNS][index % COLUMNS]
        bars = [(e["engine"], e["metrics"][key]) for e in engines if key in e["metrics"]]
        if not bars:
            axis.set_visible(False)
            continue
        labels = [name for name, _ in bars]
        values = [max(value, 1e-3) for _, value in bars]
        axis.bar(range(len(bars)), values, color=[colors[n] for n in labels])
        if max(values) / min(values) > 20:
            axis.set_yscale("log")
        better = "higher" if entry["higher_is_better"] else "lower"
        axis.set_title(f"{entry['label']}\n({entry['unit']}, {better} is better)", fontsize=9)
        axis.set_xticks(range(len(bars)))
        axis.set_xticklabels(labels, rotation=35, ha="right", fontsize=7)
        for position, value in enumerate(values):
            axis.annotate(f"{value:.3g}", (position, value), ha="center", va="bottom", fontsize=7)
    for index in range(len(workloads), rows * COLUMNS):
        axes[index // COLUMNS][index % COLUMNS].set_visible(False)
    figure.suptitle(f"make bench, {data.get('generated', '')}", fontsize=10)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)


def main() -> int:
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    draw(json.loads(source.read_text()), target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
