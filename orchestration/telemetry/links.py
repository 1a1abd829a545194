"""Where an instance's spans hang in its trace: a small record stored with the instance.

An orchestration lives longer than any process, so its span cannot be open while it runs.
Its ids are chosen when the instance is created and stored in the state row (and carried
by activity messages as a W3C `traceparent`); the span itself is written once, when the
execution ends, with the instance's creation time as its start. Every step and activity
span names it as parent, so one trace spans processes, hosts and restarts.

Pure: no OpenTelemetry import, so storage and messages can carry links as plain text.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16


def new_span_id() -> str:
    """A random, valid (non-zero) 64-bit span id in hex."""
    while True:
        value = random.getrandbits(64)
        if value:
            return f"{value:016x}"


def new_trace_id() -> str:
    """A random, valid (non-zero) 128-bit trace id in hex."""
    while True:
        value = random.getrandbits(128)
        if value:
            return f"{value:032x}"


@dataclass(frozen=True, slots=True)
class SpanRef:
    """One span's place in a trace, as W3C trace context says it."""

    trace_id: str
    span_id: str
    sampled: bool

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    @classmethod
    def parse(cls, text: object) -> SpanRef | None:
        """A `traceparent` value, or None when it is not a valid one (never raises)."""
        if not isinstance(text, str) or len(text) > 128:
            return None
        match = _TRACEPARENT.match(text.strip().lower())
        if match is None:
            return None
        version, trace_id, span_id, flags = match.groups()
        if version == "ff" or trace_id == _INVALID_TRACE or span_id == _INVALID_SPAN:
            return None
        return cls(trace_id, span_id, bool(int(flags, 16) & 1))


@dataclass(frozen=True, slots=True)
class TraceLink:
    """An execution's orchestration span (`span`, its ids fixed in advance) and the span
    it is a child of (`parent_span_id`: the start's, or a parent orchestration's; None for
    a root)."""

    span: SpanRef
    parent_span_id: str | None = None

    def encode(self) -> str:
        """The link as stored: the span's traceparent, then `;parent` when it has one."""
        text = self.span.traceparent
        return f"{text};{self.parent_span_id}" if self.parent_span_id else text

    @classmethod
    def decode(cls, text: object) -> TraceLink | None:
        """A stored link (None when absent or unreadable: tracing never fails a step)."""
        if not text or not isinstance(text, str) or len(text) > 160:
            return None
        traceparent, _, parent = text.partition(";")
        span = SpanRef.parse(traceparent)
        if span is None:
            return None
        return cls(span, parent if _SPAN_ID.match(parent) else None)

    @classmethod
    def under(cls, parent: SpanRef) -> TraceLink:
        """A new orchestration span, child of `parent`, in its trace."""
        return cls(SpanRef(parent.trace_id, new_span_id(), parent.sampled), parent.span_id)

    @classmethod
    def root(cls, sampled: bool = True) -> TraceLink:
        """A new orchestration span that starts a trace of its own."""
        return cls(SpanRef(new_trace_id(), new_span_id(), sampled))

    def next_execution(self) -> TraceLink:
        """The link of the execution continue-as-new starts: same trace, same parent."""
        return TraceLink(
            SpanRef(self.span.trace_id, new_span_id(), self.span.sampled), self.parent_span_id
        )
