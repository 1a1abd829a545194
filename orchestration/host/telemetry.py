"""OpenTelemetry for the local host: providers from the standard `OTEL_*` settings, and a
server span per HTTP invocation with the caller's `traceparent` as its parent.

Generic, as the Functions host's own tracing is: it knows HTTP and invocations, nothing of
what the app does. The SDK and exporters are the app's to install; the host sets providers
up only when `OTEL_TRACES_EXPORTER` or `OTEL_METRICS_EXPORTER` names exporters (from the
environment or local.settings.json `Values`), so an app that configures its own (Azure
Monitor's distro, say) is left alone.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context, trace
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Status, StatusCode

log = logging.getLogger("orchestration.host")

TRACES_SETTING = "OTEL_TRACES_EXPORTER"
METRICS_SETTING = "OTEL_METRICS_EXPORTER"

_shutdowns: list[Any] = []


class TelemetrySetupError(ValueError):
    """An `OTEL_*_EXPORTER` setting the host cannot honour."""


def _names(value: str | None) -> list[str]:
    return [n.strip().lower() for n in (value or "").split(",") if n.strip()]


def _span_exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as error:
            raise TelemetrySetupError(
                f"{TRACES_SETTING}=otlp needs opentelemetry-exporter-otlp-proto-http installed"
            ) from error
        return OTLPSpanExporter()
    raise TelemetrySetupError(f"{TRACES_SETTING}: unknown exporter {name!r} (console, otlp, none)")


def _metric_exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    if name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        except ImportError as error:
            raise TelemetrySetupError(
                f"{METRICS_SETTING}=otlp needs opentelemetry-exporter-otlp-proto-http installed"
            ) from error
        return OTLPMetricExporter()
    raise TelemetrySetupError(f"{METRICS_SETTING}: unknown exporter {name!r} (console, otlp, none)")


def configure(settings: Mapping[str, str]) -> list[str]:
    """Set up tracer and meter providers for the exporters the settings name; what was set
    up (empty: nothing asked for). Raises TelemetrySetupError for a setting it cannot do."""
    traces = [n for n in _names(settings.get(TRACES_SETTING)) if n != "none"]
    meters = [n for n in _names(settings.get(METRICS_SETTING)) if n != "none"]
    if not traces and not meters:
        return []
    try:
        from opentelemetry.sdk.resources import Resource
    except ImportError as error:
        raise TelemetrySetupError(
            f"{TRACES_SETTING}/{METRICS_SETTING} need opentelemetry-sdk installed in the app's "
            f"environment (pip install opentelemetry-sdk)"
        ) from error
    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    done: list[str] = []
    if traces:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        provider = TracerProvider(resource=resource)
        for name in traces:
            exporter = _span_exporter(name)
            # Console lines as spans end; anything remote in batches.
            processor = SimpleSpanProcessor if name == "console" else BatchSpanProcessor
            provider.add_span_processor(processor(exporter))
        trace.set_tracer_provider(provider)
        _shutdowns.append(provider)
        done.append(f"traces: {', '.join(traces)}")
    if meters:
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        readers = [PeriodicExportingMetricReader(_metric_exporter(name)) for name in meters]
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        metrics.set_meter_provider(meter_provider)
        _shutdowns.append(meter_provider)
        done.append(f"metrics: {', '.join(meters)}")
    return done


def shutdown() -> None:
    """Flush and stop the providers this host set up."""
    while _shutdowns:
        provider = _shutdowns.pop()
        try:
            provider.shutdown()
        except Exception as error:  # flushing to an exporter that is gone
            log.warning("telemetry shutdown failed: %s", error)


def _tracing() -> bool:
    return not isinstance(
        trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    )


@contextlib.contextmanager
def http_span(
    method: str, route: str, path: str, headers: Mapping[str, str]
) -> Iterator[trace.Span | None]:
    """The server span of one HTTP invocation (current while it runs), child of the
    caller's `traceparent`; None when the app traces nothing."""
    if not _tracing():
        yield None
        return
    span: trace.Span | None = None
    token = None
    try:
        parent = extract({k.lower(): v for k, v in headers.items()})
        tracer = trace.get_tracer("orchestration.host")
        attributes = {"http.request.method": method, "http.route": route, "url.path": path}
        span = tracer.start_span(
            f"{method} {route}", context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        token = context.attach(trace.set_span_in_context(span))
    except Exception as error:  # a tracing failure never fails the request
        log.warning("HTTP span not started: %s", error)
    try:
        yield span
    finally:
        if token is not None:
            with contextlib.suppress(Exception):
                context.detach(token)
        if span is not None:
            try:
                span.end()
            except Exception as error:
                log.warning("HTTP span not ended: %s", error)


def http_status(span: trace.Span | None, status: int) -> None:
    if span is None:
        return
    with contextlib.suppress(Exception):
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
