"""Trace and span ids on the engine's log lines (`trace_id`, `span_id` record fields).

While an activity runs, its span is the current one; while a worker handles an instance,
the instance's orchestration span is named by `follow_instance`. Either gives the ids a log
backend joins with the trace.
"""

from __future__ import annotations

import contextlib
import logging
from contextvars import ContextVar

from opentelemetry import trace

from orchestration.telemetry import tracing
from orchestration.telemetry.links import TraceLink

_instance_link: ContextVar[str | None] = ContextVar("orchestration_instance_link", default=None)


def follow_instance(stored: str | None) -> None:
    """Name the instance's orchestration span for the rest of this task's log lines (the
    orchestrator worker drains each instance in a task of its own)."""
    if _instance_link.get() != stored:
        _instance_link.set(stored)


class TraceIds(logging.Filter):
    """Adds `trace_id` and `span_id` to a record when a span is current (or an instance's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if tracing.tracer() is None:
            return True
        with contextlib.suppress(Exception):  # a line is never lost to its trace ids
            self._add_ids(record)
        return True

    @staticmethod
    def _add_ids(record: logging.LogRecord) -> None:
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = f"{span_context.trace_id:032x}"
            record.span_id = f"{span_context.span_id:016x}"
            return
        link = TraceLink.decode(_instance_link.get())
        if link is not None:
            record.trace_id = link.span.trace_id
            record.span_id = link.span.span_id


_FILTER = TraceIds()


def correlate(prefix: str = "orchestration") -> None:
    """Put the filter on every logger of the engine that exists now (idempotent)."""
    manager = logging.Logger.manager
    for name, logger in list(manager.loggerDict.items()):
        ours = name == prefix or name.startswith(prefix + ".")
        if ours and isinstance(logger, logging.Logger) and _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
