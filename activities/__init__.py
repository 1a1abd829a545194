"""Activities of the bundled workflows: one `df.Blueprint` per module, all in `BLUEPRINTS`."""

from __future__ import annotations

from activities import (
    approvals,
    documents,
    flaky,
    greetings,
    jobs,
    monitoring,
    orders,
    travel,
    uploads,
)

BLUEPRINTS = (
    greetings.bp,
    documents.bp,
    jobs.bp,
    monitoring.bp,
    approvals.bp,
    flaky.bp,
    travel.bp,
    orders.bp,
    uploads.bp,
)

__all__ = ["BLUEPRINTS"]
