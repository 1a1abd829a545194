"""Spans of the engine's work, through the OpenTelemetry API (the SDK is the app's choice).

With no tracer provider configured, `tracer()` is None after one identity check and nothing
else runs: no span objects, no attribute dicts. Span names and attributes follow Durable
Functions' (`orchestration:{name}`, `activity:{name}`, `durabletask.task.instance_id`, ...)
so a trace reads the same in Jaeger, the Aspire dashboard or Application Insights.

The orchestration span's ids are fixed when the instance is created (see `links`). The
OpenTelemetry API cannot start a span with given ids, so the SDK tracer this module uses
has its id generator wrapped: inside `_pinned_ids` it hands out the stored ids, elsewhere
it defers to the app's own generator.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import datetime
from typing import Any, ParamSpec

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
)

from orchestration.core.history import FailureDetails
from orchestration.telemetry.links import SpanRef, TraceLink
from orchestration.telemetry.providers import ProviderLookup

P = ParamSpec("P")
TRACER_NAME = "orchestration"

INSTANCE_ID = "durabletask.task.instance_id"
EXECUTION_ID = "durabletask.task.execution_id"
TASK_NAME = "durabletask.task.name"
TASK_ID = "durabletask.task.task_id"
VERSION = "durabletask.task.version"
TYPE = "durabletask.type"
STATUS = "durabletask.runtime_status"
ATTEMPT = "durabletask.task.attempt"
OUTCOME = "durabletask.task.outcome"
WHERE = "durabletask.activity.where"
STEP = "durabletask.step"

_pinned: ContextVar[tuple[int, int] | None] = ContextVar("orchestration_pinned_ids", default=None)
log = logging.getLogger("orchestration.telemetry")
_last_complaint = 0.0
MAX_MESSAGE_CHARS = 4096
MAX_STACK_CHARS = 16_384


def complain(error: BaseException) -> None:
    """Telemetry failed (an exporter or processor raised): say so at most once a minute.
    The engine's work never depends on its telemetry."""
    global _last_complaint
    now = time.monotonic()
    if now - _last_complaint >= 60:
        _last_complaint = now
        log.warning(
            "telemetry failed and was skipped: %s: %s",
            type(error).__name__,
            error,
            extra={"event": "telemetry_failed"},
        )


def guarded(function: Callable[P, None]) -> Callable[P, None]:
    """`function`, with whatever it raises reported (rate-limited) instead of raised."""

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            function(*args, **kwargs)
        except Exception as error:
            complain(error)

    return call


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextlib.contextmanager
def _current(span: Span | None) -> Iterator[Span | None]:
    """`span` current for the body (whose exceptions pass through untouched), then ended;
    a failure of the span's own calls never reaches the body's caller."""
    if span is None:
        yield None
        return
    token = None
    try:
        token = otel_context.attach(trace.set_span_in_context(span))
    except Exception as error:
        complain(error)
    try:
        yield span
    finally:
        if token is not None:
            with contextlib.suppress(Exception):
                otel_context.detach(token)
        try:
            span.end()
        except Exception as error:
            complain(error)


def detached_context() -> contextvars.Context | None:
    """A copy of the current context with no current span, for a long-lived task (None:
    not tracing, any context will do)."""
    if tracer() is None:
        return None
    copied = contextvars.copy_context()
    try:
        copied.run(otel_context.attach, otel_context.Context())
    except Exception as error:
        complain(error)
    return copied


class _PinnedIds:
    """An SDK id generator that hands out the pinned ids while `_pinned` is set."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def generate_span_id(self) -> int:
        pinned = _pinned.get()
        return pinned[1] if pinned is not None else int(self.inner.generate_span_id())

    def generate_trace_id(self) -> int:
        pinned = _pinned.get()
        return pinned[0] if pinned is not None else int(self.inner.generate_trace_id())

    def is_trace_id_random(self) -> bool:
        check = getattr(self.inner, "is_trace_id_random", None)
        return bool(check()) if check is not None else False


def _our_tracer(provider: object) -> Tracer:
    found = provider.get_tracer(TRACER_NAME)  # type: ignore[attr-defined]
    inner = getattr(found, "id_generator", None)
    if inner is not None and not isinstance(inner, _PinnedIds):
        found.id_generator = _PinnedIds(inner)
    return found  # type: ignore[no-any-return]


_lookup: ProviderLookup[Tracer] = ProviderLookup(
    lambda: trace.get_tracer_provider(),
    (trace.ProxyTracerProvider, trace.NoOpTracerProvider),
    _our_tracer,
)


def tracer() -> Tracer | None:
    """This package's tracer, or None when the app configured no tracer provider."""
    return _lookup.get()


def forget() -> None:
    """Look the provider up again at the next call (tests that swap providers)."""
    _lookup.forget()


def enabled() -> bool:
    return tracer() is not None


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


def _remote(ref: SpanRef, span_id: str | None = None) -> otel_context.Context:
    """A context whose current span is `ref` (or `span_id` in its trace), from elsewhere."""
    flags = TraceFlags(TraceFlags.SAMPLED if ref.sampled else TraceFlags.DEFAULT)
    span_context = SpanContext(
        int(ref.trace_id, 16), int(span_id or ref.span_id, 16), is_remote=True, trace_flags=flags
    )
    return trace.set_span_in_context(NonRecordingSpan(span_context), otel_context.Context())


def context_of(traceparent: str | None) -> otel_context.Context | None:
    """The context a `traceparent` value names (None: absent or invalid)."""
    ref = SpanRef.parse(traceparent)
    return _remote(ref) if ref is not None else None


@contextlib.contextmanager
def starting(
    name: str, instance_id: str, parent: otel_context.Context | None = None
) -> Iterator[TraceLink | None]:
    """The span of a start (`create_orchestration:{name}`), child of the current span or of
    `parent`; yields the new instance's link (None when not tracing)."""
    found = tracer()
    if found is None:
        yield None
        return
    link: TraceLink | None = None
    span: Span | None = None
    try:
        attributes = {TYPE: "orchestration", TASK_NAME: name, INSTANCE_ID: instance_id}
        span = found.start_span(
            f"create_orchestration:{name}",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes=attributes,
        )
        span_context = span.get_span_context()
        if span_context.is_valid:
            start = SpanRef(
                f"{span_context.trace_id:032x}",
                f"{span_context.span_id:016x}",
                span_context.trace_flags.sampled,
            )
            link = TraceLink.under(start)
    except Exception as error:
        complain(error)
    with _current(span):
        try:
            yield link
        except Exception as error:
            if span is not None:
                _record_error(span, error)
            raise


def _record_error(span: Span, error: BaseException) -> None:
    try:
        span.set_status(Status(StatusCode.ERROR, clip(f"{type(error).__name__}: {error}", 1000)))
        span.add_event(
            "exception",
            {
                "exception.type": type(error).__name__,
                "exception.message": clip(str(error), MAX_MESSAGE_CHARS),
            },
        )
    except Exception as failure:
        complain(failure)


def root_link() -> TraceLink | None:
    """A link for an instance created by a process that was not tracing (None: this one is
    not either). Sampled as the tracer's sampler decides for a root, so that its kept
    children never lack their parent."""
    found = tracer()
    if found is None:
        return None
    link = TraceLink.root()
    sampler = getattr(found, "sampler", None)
    if sampler is None:
        return link
    try:
        decision = sampler.should_sample(None, int(link.span.trace_id, 16), "orchestration")
        sampled = bool(decision.decision.is_sampled())
    except Exception as error:
        complain(error)
        return link
    return TraceLink(SpanRef(link.span.trace_id, link.span.span_id, sampled))


def child_link(parent: str | None) -> str | None:
    """The stored link of a sub-orchestration of an execution whose link is `parent`."""
    link = TraceLink.decode(parent)
    return TraceLink.under(link.span).encode() if link is not None else None


def _failed(span: Span, failure: FailureDetails) -> None:
    span.set_status(Status(StatusCode.ERROR, clip(failure.describe(), 1000)))
    attributes = {
        "exception.type": clip(failure.error_type, 256),
        "exception.message": clip(failure.message, MAX_MESSAGE_CHARS),
    }
    if failure.stack_trace:
        attributes["exception.stacktrace"] = clip(failure.stack_trace, MAX_STACK_CHARS)
    span.add_event("exception", attributes)


@guarded
def orchestration_ended(
    stored: str | None,
    *,
    name: str,
    instance_id: str,
    execution_id: str,
    version: str | None,
    status: str,
    started_at: datetime,
    ended_at: datetime,
    failure: FailureDetails | None = None,
) -> None:
    """Write an execution's span, once, when its end is committed."""
    link = TraceLink.decode(stored)
    found = tracer()
    if link is None or found is None:
        return
    ref = link.span
    if link.parent_span_id is not None:
        parent = _remote(ref, link.parent_span_id)
    else:
        parent = otel_context.Context()  # a root: its trace id is pinned too
    attributes: dict[str, Any] = {
        TYPE: "orchestration",
        TASK_NAME: name,
        INSTANCE_ID: instance_id,
        EXECUTION_ID: execution_id,
        STATUS: status,
    }
    if version:
        attributes[VERSION] = version
    token = _pinned.set((int(ref.trace_id, 16), int(ref.span_id, 16)))
    try:
        span = found.start_span(
            f"orchestration:{name}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            start_time=_ns(started_at),
        )
    finally:
        _pinned.reset(token)
    if failure is not None:
        _failed(span, failure)
    span.end(end_time=max(_ns(ended_at), _ns(started_at)))


@guarded
def step_traced(
    stored: str | None,
    *,
    name: str,
    instance_id: str,
    execution_id: str,
    step: int,
    started_ns: int,
    status: str,
    events: list[tuple[str, dict[str, Any]]],
    attributes: dict[str, Any],
) -> None:
    """Write the span of one committed orchestrator step (replays are never traced)."""
    link = TraceLink.decode(stored)
    found = tracer()
    if link is None or found is None:
        return
    span = found.start_span(
        f"orchestration_step:{name}",
        context=_remote(link.span),
        kind=SpanKind.INTERNAL,
        attributes={
            TYPE: "orchestration_step",
            TASK_NAME: name,
            INSTANCE_ID: instance_id,
            EXECUTION_ID: execution_id,
            STEP: step,
            STATUS: status,
            **attributes,
        },
        start_time=started_ns,
    )
    for event_name, event_attributes in events:
        span.add_event(event_name, event_attributes)
    span.end()


@contextlib.contextmanager
def activity_span(
    traceparent: str | None,
    *,
    name: str,
    instance_id: str,
    task_id: int,
    attempt: int,
    local: bool,
) -> Iterator[Span | None]:
    """The span of one execution of an activity (each attempt and redelivery its own),
    current while it runs, so the activity's own spans (HTTP calls...) nest under it."""
    found = tracer()
    parent = context_of(traceparent) if found is not None else None
    if found is None or parent is None:
        yield None
        return
    span: Span | None = None
    try:
        attributes: dict[str, str | int] = {
            TYPE: "activity",
            TASK_NAME: name,
            INSTANCE_ID: instance_id,
            TASK_ID: task_id,
            ATTEMPT: attempt,
            WHERE: "local" if local else "queued",
        }
        span = found.start_span(
            f"activity:{name}", context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
    except Exception as error:
        complain(error)
    with _current(span) as current:
        yield current


@guarded
def activity_outcome(span: Span | None, failure: FailureDetails | None) -> None:
    if span is None:
        return
    span.set_attribute(OUTCOME, "failed" if failure is not None else "completed")
    if failure is not None:
        _failed(span, failure)
