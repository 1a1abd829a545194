"""The bench's table and JSON: every engine's figures, and ours against the best peer.

For each workload the best peer is the best figure among the peers (highest workflows/s,
lowest seconds or milliseconds); `ours/best` is our figure divided by it, and the verdict
says whether ours is ahead or behind (for times, a ratio under 1 is ahead).
"""

from __future__ import annotations

from typing import Any

from common import ENTITY_GOAL, ENTITY_METRICS, ENTITY_PUBLISHED, METRICS

# Ours-only figures, from the 16-caller chain and the 1,000-wide fan-out.
OURS_ONLY: dict[str, tuple[str, str]] = {
    "cpu_ours_chain": ("chain: CPU per activity, our processes", "ms"),
    "cpu_azurite_chain": ("chain: CPU per activity, Azurite", "ms"),
    "calls_chain": ("chain: engine storage calls per activity", "calls"),
    "cpu_ours_fanout": ("fan-out 1000: CPU per activity, ours", "ms"),
    "cpu_azurite_fanout": ("fan-out 1000: CPU per activity, Azurite", "ms"),
    "calls_fanout": ("fan-out 1000: engine storage calls per activity", "calls"),
}


def is_ours(engine: dict[str, Any]) -> bool:
    return str(engine["engine"]).startswith("ours")


def _entities_only(engine: dict[str, Any]) -> bool:
    """A row that ran only the entity workloads (`run.py --only entities`)."""
    return bool(engine.get("settings", {}).get("only") == "entities")


def compare(engines: list[dict[str, Any]]) -> dict[str, Any]:
    """Per workload: the best peer and each of our rows' ratio and verdict."""
    comparison: dict[str, Any] = {}
    for key, (label, unit, higher) in METRICS.items():
        peers = [
            (e["engine"], e["metrics"][key])
            for e in engines
            if not is_ours(e) and key in e.get("metrics", {})
        ]
        entry: dict[str, Any] = {"label": label, "unit": unit, "higher_is_better": higher}
        if peers:
            best_name, best = (max if higher else min)(peers, key=lambda p: p[1])
            entry["best_peer"] = {"engine": best_name, "value": best}
            ours: dict[str, Any] = {}
            for e in engines:
                if is_ours(e) and key in e.get("metrics", {}):
                    value = e["metrics"][key]
                    ratio = value / best if best else float("inf")
                    ahead = value > best if higher else value < best
                    ours[e["engine"]] = {
                        "value": value,
                        "ratio": round(ratio, 3),
                        "verdict": "ahead" if ahead else "behind",
                    }
            entry["ours"] = ours
        comparison[key] = entry
    return comparison


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if value < 1 else f"{value:.2f}"


def table(engines: list[dict[str, Any]], comparison: dict[str, Any]) -> str:
    """One row per engine per workload, then the ours-only figures and unavailable peers."""
    width = max([len(e["engine"]) for e in engines] + [12])
    lines = [
        f"{'workload':<30} {'engine':<{width}} {'value':>9} {'unit':<5} {'ours/best peer':<22}",
        "-" * (30 + width + 42),
    ]
    if all(_entities_only(e) for e in engines):
        lines = []
    for key, entry in comparison.items():
        label = entry["label"]
        best = entry.get("best_peer")
        for e in engines:
            if _entities_only(e):
                continue
            metrics = e.get("metrics", {})
            if key not in metrics:
                if key in e.get("errors", {}) or e["status"] == "ok":
                    errors = e.get("errors", {})
                    stopped = "stopped by its time budget" if "budget" in errors else ""
                    reason = errors.get(key) or stopped or "not measured"
                    lines.append(f"{label:<30} {e['engine']:<{width}} {'-':>9} {'':<5} {reason}")
                    label = ""
                continue
            note = ""
            if best and e["engine"] == best["engine"]:
                note = "best peer"
            elif is_ours(e) and best:
                ours = entry["ours"][e["engine"]]
                note = f"{ours['ratio']:.2f}x  {ours['verdict']}"
            lines.append(
                f"{label:<30} {e['engine']:<{width}} {_number(metrics[key]):>9} "
                f"{entry['unit']:<5} {note}"
            )
            label = ""
    ours_rows = [e for e in engines if is_ours(e)]
    measured = [
        f"{label:<50} {e['engine']:<{width}} {_number(e['metrics'][key]):>7} {unit}"
        for key, (label, unit) in OURS_ONLY.items()
        for e in ours_rows
        if key in e.get("metrics", {})
    ]
    if measured:
        lines.append("")
        lines.append("ours only (CPU and storage calls per activity round trip):")
        lines.extend(measured)
    for e in ours_rows:
        extra = e.get("extra", {})
        chain = extra.get("chain_16", {})
        if chain:
            lines.append(
                f"{e['engine']}, chain 16 callers: storage calls per activity: engine "
                f"{chain.get('engine_calls_per_activity')}, client "
                f"{chain.get('client_calls_per_activity')}; cores busy {chain.get('cores_busy')}"
            )
        if "latency_anatomy_ms_p50" in extra:
            lines.append(
                f"{e['engine']}, 1-activity latency, p50 ms by part: "
                f"{extra['latency_anatomy_ms_p50']}"
            )
    entities = entity_table(engines)
    if entities:
        lines.extend(["", entities] if lines else [entities])
    down = [e for e in engines if e["status"] != "ok"]
    if down:
        lines.append("")
        lines.extend(f"{e['engine']}: {e['status']}" for e in down)
    return "\n".join(lines)


def entity_summary(engines: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON's `entities` section: our rows' entity operations/s (no peer has entities),
    beside Durable Functions' published figures (for reference) and the goal."""
    rows = {
        e["engine"]: {k: e["metrics"][k] for k in ENTITY_METRICS if k in e.get("metrics", {})}
        for e in engines
        if is_ours(e)
    }
    return {
        "unit": "ops/s",
        "labels": ENTITY_METRICS,
        "ours": {name: figures for name, figures in rows.items() if figures},
        "published_reference": ENTITY_PUBLISHED,
        "goal_one_entity": ENTITY_GOAL,
    }


def entity_table(engines: list[dict[str, Any]]) -> str:
    """Our entity figures, one line per workload, with where the time and calls went; ''
    when no row measured entities."""
    rows = [e for e in engines if is_ours(e) and "entities" in e.get("extra", {})]
    if not rows:
        return ""
    lines = [
        "durable entities (ours only; the peers have no entities), operations/s; per operation:",
        "  CPU ms in host/client/Azurite; storage calls engine+host queue listener+client;",
        "  operations per entity commit; peak control-queue depth",
    ]
    for e in rows:
        details, errors = e["extra"]["entities"], e.get("errors", {})
        for key, label in ENTITY_METRICS.items():
            figures = details.get(key)
            if figures is None:
                reason = errors.get(key) or errors.get("entities") or "not measured"
                lines.append(f"  {label:<34} {e['engine']:<30} {'-':>6}        {reason}")
                continue
            cpu = figures["cpu_ms_per_op"]
            calls = "+".join(
                str(figures[f"{part}_calls_per_op"]) for part in ("engine", "listener", "client")
            )
            lines.append(
                f"  {label:<34} {e['engine']:<30} {_number(figures['ops_per_second']):>6} ops/s"
                f"  ({figures['operations']} ops in {figures['seconds']:.2f} s; CPU "
                f"{cpu['host']:.2f}/{cpu['client']:.2f}/{cpu['azurite']:.2f}; calls {calls}; "
                f"{figures['ops_per_batch']}/commit; depth {figures['control_queue_depth_max']})"
            )
    reference = "; ".join(f"{name} {value}" for name, value in ENTITY_PUBLISHED.items())
    lines.append(f"  reference, published (not measured here): {reference}")
    for e in rows:
        hot = [e["metrics"][k] for k in ("entity_hot_orch", "entity_hot_client")
               if k in e["metrics"]]  # fmt: skip
        if not hot:
            lines.append(
                f"  goal {ENTITY_GOAL:,.0f} ops/s on one entity: {e['engine']} not measured"
            )
        else:
            verdict = "meets" if min(hot) >= ENTITY_GOAL else "below"
            lines.append(
                f"  goal {ENTITY_GOAL:,.0f} ops/s on one entity: {e['engine']} "
                f"{' / '.join(_number(v) for v in hot)} ops/s (orchestrations / clients): "
                f"{verdict}"
            )
    return "\n".join(lines)
