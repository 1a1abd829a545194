"""Draw bench/results/bench.json as a PNG: one panel of bars per workload, one bar per engine,
and one for our durable entities' operations/s (ours only: the peers have none), with
Durable Functions' published figures and the goal drawn as lines for reference.

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
    entities = data.get("entities", {})
    panels = len(workloads) + (1 if entities.get("ours") else 0)
    rows = (panels + COLUMNS - 1) // COLUMNS
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
    if entities.get("ours"):
        index = len(workloads)
        draw_entities(axes[index // COLUMNS][index % COLUMNS], entities, colors)
    for index in range(panels, rows * COLUMNS):
        axes[index // COLUMNS][index % COLUMNS].set_visible(False)
    figure.suptitle(f"make bench, {data.get('generated', '')}", fontsize=10)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)


def draw_entities(axis: Any, entities: dict[str, Any], colors: dict[str, Any]) -> None:
    """Our entity operations/s per workload, a bar per row that measured them."""
    labels = entities["labels"]
    rows = list(entities["ours"].items())
    width = 0.8 / len(rows)
    highest = max((v for _, figures in rows for v in figures.values()), default=0.0)
    for offset, (name, figures) in enumerate(rows):
        positions = [i + offset * width for i in range(len(labels))]
        values = [figures.get(key, 10.0) for key in labels]  # 10: the axis' floor
        axis.bar(positions, values, width, color=colors.get(name), label=name)
        for position, key, value in zip(positions, labels, values, strict=True):
            text = f"{value:.0f}" if key in figures else "failed"  # its error is in the JSON
            axis.annotate(text, (position, value), ha="center", va="bottom", fontsize=7)
    goal = entities.get("goal_one_entity", 1000)
    axis.axhline(64, color="grey", linestyle=":", linewidth=1, label="DF, Azure Storage: 64/s")
    axis.axhspan(900, 1900, color="grey", alpha=0.12, label="DF, Netherite: 900-1,900/s")
    axis.axhline(
        goal, color="red", linestyle="--", linewidth=1, label=f"goal, 1 entity: {goal:,.0f}/s"
    )
    axis.set_yscale("log")
    axis.set_ylim(10, max(2300, highest) * 12)  # headroom for the legend
    axis.legend(fontsize=6, loc="upper left", ncol=2)
    axis.set_title("durable entities, ours only\n(ops/s, higher is better)", fontsize=9)
    axis.set_xticks([i + width * (len(rows) - 1) / 2 for i in range(len(labels))])
    axis.set_xticklabels(list(labels.values()), rotation=35, ha="right", fontsize=7)


def main() -> int:
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    draw(json.loads(source.read_text()), target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
