"""Dashboard benchmark: the instance list in a real browser against one page of the API,
with 100 and with 10,000 instances in the hub.

Starts the local host on the project's app (tests/apps/workflows_app) with a task hub of its
own against the Azurite it finds or starts, seeds finished instances' state rows directly,
and at each hub size measures (median of `--repeat`):
- one page of the management API, `GET durabletask/instances?top=50` with a key;
- the dashboard's list view in headless Chromium (Debian's), from the route change to 50
  rendered rows: its one API call through the session plus building the table.
It prints both and their ratio; the list stays one page of the API plus a constant, however
large the hub.

    .venv/bin/python bench/dashboard_bench.py [--sizes 100,10000] [--repeat 15] [--json out]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import urllib.request
from collections.abc import Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.app_host import CHROMIUM, CHROMIUM_ARGS, app_host, signed_in_page  # noqa: E402
from orchestration.core.status import OrchestrationRuntimeStatus  # noqa: E402
from orchestration.storage.hub import TaskHub  # noqa: E402
from orchestration.storage.state import InstanceState, state_row  # noqa: E402

PAGE_SIZE = 50
T = TypeVar("T")


async def write_states(
    connection_string: str, hub_name: str, states: Iterable[InstanceState]
) -> None:
    """Write instances' state rows straight into a hub (64 at a time)."""
    hub = TaskHub.from_connection_string(connection_string, hub_name)
    slots = asyncio.Semaphore(64)

    async def one(state: InstanceState) -> None:
        async with slots:
            row = await state_row(state, hub.payloads)
            await hub.tables.upsert(hub.names.instances_table, row, mode="replace")

    try:
        await hub.create_if_not_exists()
        await asyncio.gather(*(one(state) for state in states))
    finally:
        await hub.close()


def seeded_states(count: int, start: int = 0, prefix: str = "seeded-") -> list[InstanceState]:
    """`count` Completed instances with ids `{prefix}{n:05d}`, created a second apart."""
    created = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        InstanceState(
            instance_id=f"{prefix}{index:05d}",
            name="seeded_orchestrator",
            status=OrchestrationRuntimeStatus.Completed,
            created_at=created + timedelta(seconds=index),
            updated_at=created + timedelta(seconds=index + 1),
        )
        for index in range(start, start + count)
    ]


def aside(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` on an event loop of another thread (Playwright's sync API holds this
    thread's)."""
    with ThreadPoolExecutor(1) as runner:
        return runner.submit(asyncio.run, work).result()


def seed(connection_string: str, hub_name: str, count: int, start: int = 0) -> None:
    """Write `seeded_states` into a hub, from a thread of its own."""
    aside(write_states(connection_string, hub_name, seeded_states(count, start)))


def api_page(base: str, key: str) -> float:
    request = urllib.request.Request(
        f"{base}/api/durabletask/instances?top={PAGE_SIZE}&showInput=false",
        headers={"x-functions-key": key},
    )
    began = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        rows = json.loads(response.read())
    elapsed = time.perf_counter() - began
    assert len(rows) == PAGE_SIZE, len(rows)
    return elapsed * 1000


LIST_VIEW = """async (hash) => {
  document.getElementById("main").replaceChildren();
  const began = performance.now();
  window.location.hash = hash;
  const ready = () =>
    document.querySelectorAll("table.instances tbody tr[data-instance]").length === ROWS;
  await new Promise((done) => {
    const watch = new MutationObserver(() => {
      if (ready()) {
        watch.disconnect();
        done();
      }
    });
    watch.observe(document.getElementById("main"), { childList: true, subtree: true });
  });
  const fetched = performance
    .getEntriesByType("resource")
    .filter((entry) => entry.name.includes("/dashboard-api/durabletask/instances"))
    .pop();
  performance.clearResourceTimings();
  return [performance.now() - began, fetched ? fetched.duration : NaN];
}""".replace("ROWS", str(PAGE_SIZE))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,10000")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    sizes = sorted(int(s) for s in options.sizes.split(","))
    from playwright.sync_api import sync_playwright

    results: list[dict[str, Any]] = []
    with app_host("Dash") as host, sync_playwright() as playwright:
        base, key, connection, hub_name = host.base, host.key, host.connection, host.hub
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = signed_in_page(browser, host)
        page.uncheck("#auto-refresh")
        seeded = 0
        for size in sizes:
            print(f"seeding the hub to {size:,} instances", flush=True)
            seed(connection, hub_name, size - seeded, start=seeded)
            seeded = size
            for _ in range(3):  # warm both paths
                api_page(base, key)
                page.evaluate(LIST_VIEW, f"#/instances?top={PAGE_SIZE}&w={_}")
            api = [api_page(base, key) for _ in range(options.repeat)]
            views = [
                page.evaluate(LIST_VIEW, f"#/instances?top={PAGE_SIZE}&r={size}-{i}")
                for i in range(options.repeat)
            ]
            row = {
                "instances": size,
                "api_page_ms": round(statistics.median(api), 1),
                "list_view_ms": round(statistics.median(v[0] for v in views), 1),
                "its_api_call_ms": round(statistics.median(v[1] for v in views), 1),
            }
            row["ratio"] = round(row["list_view_ms"] / row["api_page_ms"], 2)
            results.append(row)
            print(
                f"{size:>7,} instances: one API page {row['api_page_ms']:6.1f} ms; "
                f"list view in Chromium {row['list_view_ms']:6.1f} ms "
                f"(x{row['ratio']:.2f}; its API call {row['its_api_call_ms']:.1f} ms)",
                flush=True,
            )
        browser.close()
    if len(results) > 1:
        first, last = results[0], results[-1]
        print(
            f"from {first['instances']:,} to {last['instances']:,} instances: API page "
            f"x{last['api_page_ms'] / first['api_page_ms']:.2f}, list view "
            f"x{last['list_view_ms'] / first['list_view_ms']:.2f}"
        )
    if options.json:
        options.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
