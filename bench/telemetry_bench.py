"""What tracing costs: the engine with no tracer provider against the engine with its
telemetry calls taken out, and with an SDK provider recording every span (for scale).

In process, on the in-memory task hub (no storage latency to hide a cost behind: this is the
engine's own CPU per step and activity), rounds interleaved so drift hits all variants alike:
- `removed`: the telemetry entry points replaced by no-ops (the engine as before issue 18),
- `no provider`: as shipped, no OpenTelemetry SDK configured (what `make bench` runs),
- `sdk, spans dropped`: an SDK TracerProvider and MeterProvider whose exporters drop all.

    .venv/bin/python bench/telemetry_bench.py [--chain 200] [--fan-out 500] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from opentelemetry import metrics, trace  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from orchestration.client import DurableOrchestrationClient  # noqa: E402
from orchestration.functions import activity_worker  # noqa: E402
from orchestration.functions.burst import BurstWorker  # noqa: E402
from orchestration.functions.orchestrator import observe, worker  # noqa: E402
from orchestration.storage.hub import TaskHub  # noqa: E402
from orchestration.telemetry import logs, tracing  # noqa: E402
from orchestration.telemetry import metrics as our_metrics  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from hub_bench import registry  # noqa: E402  (the same chain, fan-out and activity)


class _Dropped(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


@contextlib.contextmanager
def _patched(target: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, old)


@contextlib.contextmanager
def removed() -> Iterator[None]:
    """The telemetry entry points as no-ops: the engine without its telemetry calls."""

    @contextlib.contextmanager
    def no_start(*args: Any, **kwargs: Any) -> Iterator[None]:
        yield None

    async def bare_execute(self: Any, message: Any, *, local: bool = False) -> Any:
        return await self._execute(message, local)

    with contextlib.ExitStack() as stack:
        stack.enter_context(_patched(observe, "step_committed", lambda *a, **k: None))
        stack.enter_context(_patched(observe, "execution_ended", lambda *a, **k: None))
        stack.enter_context(_patched(tracing, "starting", no_start))
        stack.enter_context(_patched(tracing, "root_link", lambda: None))
        stack.enter_context(_patched(our_metrics, "instruments", lambda: None))
        stack.enter_context(_patched(logs, "follow_instance", lambda stored: None))
        stack.enter_context(_patched(worker.logs, "follow_instance", lambda stored: None))
        stack.enter_context(_patched(activity_worker.ActivityWorker, "execute", bare_execute))
        yield


@contextlib.contextmanager
def no_provider() -> Iterator[None]:
    yield


@contextlib.contextmanager
def sdk_dropping() -> Iterator[None]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_Dropped()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    with (
        _patched(trace, "get_tracer_provider", lambda: provider),
        _patched(metrics, "get_meter_provider", lambda: meter_provider),
    ):
        tracing.forget()
        our_metrics.forget()
        yield
    tracing.forget()
    our_metrics.forget()
    provider.shutdown()
    meter_provider.shutdown()


VARIANTS: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {
    "removed": removed,
    "no provider": no_provider,
    "sdk, spans dropped": sdk_dropping,
}


async def one_run(name: str, size: int) -> float:
    hub = TaskHub.in_memory()
    await hub.create_if_not_exists()
    client = DurableOrchestrationClient(hub)
    burst = BurstWorker(hub, registry(), visibility_timeout=30)
    started = time.process_time()  # CPU of this process: another process's load is not ours
    instance_id = await client.start_new(name, None, size)

    async def done() -> bool:
        status = await client.get_status(instance_id)
        return status is not None and status.runtime_status.is_terminal

    await burst.run_until(done, timeout=120, idle_sleep=0.0005)
    elapsed = time.process_time() - started
    burst.workers.orchestrators.close()
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chain", type=int, default=300)
    parser.add_argument("--fan-out", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    workloads = {"chain": args.chain, "fan_out": args.fan_out}
    times: dict[str, dict[str, list[float]]] = {w: {v: [] for v in VARIANTS} for w in workloads}
    for workload, size in workloads.items():
        for variant in VARIANTS.values():  # warm-up, not counted
            with variant():
                await one_run(workload, size)
        labels = list(VARIANTS)
        for round_number in range(args.rounds):
            # Each round starts with another variant: whatever one leaves behind (garbage,
            # warm caches) falls on each of the others in turn.
            shift = round_number % len(labels)
            for label in labels[shift:] + labels[:shift]:
                with VARIANTS[label]():
                    times[workload][label].append(await one_run(workload, size))
    report: dict[str, Any] = {}
    print(f"\nTelemetry cost (CPU seconds in process, in-memory hub, {args.rounds} rounds)")
    header = f"{'workload':<10}{'variant':<21}{'best s':>8}{'median s':>10}"
    print(f"{header}{'best vs removed':>17}{'median vs removed':>19}")
    for workload, by_variant in times.items():
        best_base = min(by_variant["removed"])
        median_base = statistics.median(by_variant["removed"])
        report[workload] = {}
        for label, values in by_variant.items():
            best, median = min(values), statistics.median(values)
            entry = {"best_s": best, "median_s": median}
            entry |= {"best_ratio": best / best_base, "median_ratio": median / median_base}
            report[workload][label] = entry
            print(
                f"{workload:<10}{label:<21}{best:>8.4f}{median:>10.4f}"
                f"{best / best_base:>17.3f}{median / median_base:>19.3f}"
            )
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
