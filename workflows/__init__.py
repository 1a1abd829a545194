"""Orchestrators of the bundled workflows: one `df.Blueprint` per module, all in `BLUEPRINTS`."""

from __future__ import annotations

from workflows import (
    approval,
    async_http,
    chaining,
    fan_out_fan_in,
    monitor,
    order,
    retry,
    saga,
    sub_orchestrations,
    uploads,
)

BLUEPRINTS = (
    chaining.bp,
    fan_out_fan_in.bp,
    async_http.bp,
    monitor.bp,
    approval.bp,
    sub_orchestrations.bp,
    retry.bp,
    saga.bp,
    order.bp,
    uploads.bp,
)

__all__ = ["BLUEPRINTS"]
