"""The workers of one process and how they are tied to each other, in one place.

The activity worker may commit its results through the orchestrator worker (`directResults`)
and the orchestrator worker may run small batches of activities through the activity worker
(`localActivities`); both share the engine's mailbox; and one `Delivery` hands every queue
message to them. The engine and the burst worker both build their workers here.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestration.functions.activity_bindings import ActivityBindings
from orchestration.functions.activity_worker import ActivityWorker
from orchestration.functions.delivery import Delivery
from orchestration.functions.orchestrator import OrchestratorWorker, WorkerOptions
from orchestration.functions.registry import Registry
from orchestration.functions.settings import EngineSettings
from orchestration.storage.hub import TaskHub
from orchestration.storage.mailbox import Mailbox
from orchestration.telemetry import logs, metrics


@dataclass
class Workers:
    """A process's orchestrator and activity workers and the delivery in front of them."""

    orchestrators: OrchestratorWorker
    activities: ActivityWorker
    delivery: Delivery


def build_workers(
    hub: TaskHub,
    registry: Registry,
    settings: EngineSettings,
    *,
    mailbox: Mailbox | None = None,
) -> Workers:
    """The workers of one process on `hub`, wired as `settings` say."""
    options = WorkerOptions.from_settings(settings)
    orchestrators = OrchestratorWorker(hub, registry, options, mailbox=mailbox)
    activities = ActivityWorker(
        hub,
        registry,
        apply_result=orchestrators.handle if settings.direct_results else None,
        bindings=ActivityBindings(settings.queue_message_encoding),
    )
    if settings.local_activities:
        orchestrators.local_runner = activities.execute_here
    account_totals = getattr(hub.account, "totals", None)
    metrics.watch(
        hub.names.hub,
        orchestrators.stats,
        (lambda: account_totals) if account_totals is not None else None,
    )
    logs.correlate()
    delivery = Delivery(
        hub,
        registry,
        orchestrators,
        activities,
        settings.max_dequeue_count,
        settings.versioning.default_version,
    )
    return Workers(orchestrators, activities, delivery)
