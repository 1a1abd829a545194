"""Saga: book a trip's flight, hotel and car; undo the bookings made if a step fails."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import orchestration as df

bp = df.Blueprint()

STEPS = (
    ("book_flight", "cancel_flight"),
    ("book_hotel", "cancel_hotel"),
    ("book_car", "cancel_car"),
)


@bp.orchestration_trigger(context_name="context")
def trip_booking(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Book each part in turn; on a failure, compensate the done parts in reverse order."""
    trip = dict(context.get_input() or {})
    trip.setdefault("trip_id", context.instance_id)
    bookings: dict[str, str] = {}
    compensations: list[tuple[str, str]] = []
    for book, cancel in STEPS:
        try:
            reference = yield context.call_activity(book, trip)
        except df.TaskFailedError as failure:
            context.set_custom_status({"stage": "compensating", "failed": book})
            cancelled = []
            for undo, booked in reversed(compensations):
                cancelled.append((yield context.call_activity(undo, booked)))
            context.set_custom_status({"stage": "compensated", "failed": book})
            return {
                "status": "Compensated",
                "failed_step": book,
                "error": f"{failure.error_type}: {failure.failure.message}",
                "compensations": cancelled,
            }
        bookings[book.removeprefix("book_")] = reference
        compensations.append((cancel, reference))
    context.set_custom_status({"stage": "booked"})
    return {"status": "Booked", "bookings": bookings}
