"""The engine's queue and timer functions: what an app registers to run orchestrations.

Each is an ordinary Azure Functions trigger (queue or timer), so the same app runs on our
local host and on Azure. What a queue message means, and when it is poisoned, is the
engine's `Delivery`'s business (the burst worker uses the same).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import azure.functions as func

from orchestration.functions.engine import Engine
from orchestration.storage.entities import NOT_ENTITY_NAMES
from orchestration.storage.hub import TaskHub
from orchestration.storage.messages import (
    ControlMessage,
)
from orchestration.storage.names import (
    odata_datetime,
)
from orchestration.telemetry import metrics

log = logging.getLogger("orchestration.triggers")

TIMER_HORIZON = timedelta(days=6)


async def on_control_message(engine: Engine, message: func.QueueMessage) -> None:
    runtime = await engine.runtime()
    await runtime.delivery.control(message.get_body(), message.dequeue_count or 1)


async def on_work_item(engine: Engine, message: func.QueueMessage) -> None:
    runtime = await engine.runtime()
    await runtime.delivery.work_item(message.get_body(), message.dequeue_count or 1)


async def on_start_message(engine: Engine, message: func.QueueMessage) -> None:
    """`{"name", "input", "instanceId"?}` from any producer starts an orchestration."""
    runtime = await engine.runtime()
    await runtime.delivery.start(message.get_body(), message.id)


async def on_timer_sweep(engine: Engine) -> None:
    """Queue far timers that came within reach; wake instances that look stuck."""
    runtime = await engine.runtime()
    await sweep(runtime.hub, engine.settings.repair_after, datetime.now(UTC))
    if metrics.instruments() is not None:
        try:
            metrics.sampled_depths(runtime.hub.names.hub, await runtime.hub.queue_depths())
        except Exception as error:  # a metric never fails the sweep
            log.warning("could not sample queue depths: %s", error, extra={"event": "metrics"})


async def sweep(hub: TaskHub, repair_after: timedelta, now: datetime) -> None:
    """The timer sweeper's work at time `now` (a parameter, so tests can move the clock)."""
    for row, timer in await hub.due_far_timers(now + TIMER_HORIZON):
        fire_at = row["FireAt"]
        await hub.send_control(timer, fire_at - now)
        await hub.delete_far_timer(row)
    cutoff = now - repair_after
    # Entities are never quiet-stuck (their requests wait on the queue): only a wake-up
    # time (a held-back request to release) makes the sweep wake one.
    stale = (
        f"(RuntimeStatus eq 'Running' or RuntimeStatus eq 'Pending') and "
        f"((LastUpdatedTime lt {odata_datetime(cutoff)} and {NOT_ENTITY_NAMES}) "
        f"or WakeAt lt {odata_datetime(now)})"
    )
    async for state in hub.iterate_states(stale):
        if state.next_repair_at is not None and state.next_repair_at > now:
            continue
        # Space repairs out (5 min, 10, 20, ...): an instance waiting days for an event is
        # quiet, not stuck, and each repair may run an open activity once more.
        wait = repair_after * (2 ** min(state.repairs, 10))
        if not await hub.mark_repair(state, now + wait):
            continue  # a worker committed meanwhile: it is not stuck
        log.info(
            "waking a quiet instance (repair %d)",
            state.repairs + 1,
            extra={"instance_id": state.instance_id, "event": "repair"},
        )
        await hub.send_control(ControlMessage(state.instance_id, None, None))
