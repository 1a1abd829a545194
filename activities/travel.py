"""Saga: book and cancel the parts of a trip."""

from __future__ import annotations

from typing import Any

import orchestration as df

bp = df.Blueprint()


class CarUnavailableError(RuntimeError):
    """No car can be rented for the trip."""


@bp.activity_trigger(input_name="trip")
def book_flight(trip: dict[str, Any]) -> str:
    """Book the flight; its booking reference."""
    return f"FL-{trip['trip_id']}"


@bp.activity_trigger(input_name="trip")
def book_hotel(trip: dict[str, Any]) -> str:
    """Book the hotel; its booking reference."""
    return f"HO-{trip['trip_id']}"


@bp.activity_trigger(input_name="trip")
def book_car(trip: dict[str, Any]) -> str:
    """Rent the car (fails when `trip["fail_car"]`); its booking reference."""
    if trip.get("fail_car"):
        raise CarUnavailableError(f"no car available for trip {trip['trip_id']}")
    return f"CA-{trip['trip_id']}"


@bp.activity_trigger(input_name="booking")
def cancel_flight(booking: str) -> str:
    """Cancel a flight booking."""
    return f"cancelled {booking}"


@bp.activity_trigger(input_name="booking")
def cancel_hotel(booking: str) -> str:
    """Cancel a hotel booking."""
    return f"cancelled {booking}"


@bp.activity_trigger(input_name="booking")
def cancel_car(booking: str) -> str:
    """Cancel a car booking."""
    return f"cancelled {booking}"
