"""The order process: inventory, reservation, payment, shipping, notification."""

from __future__ import annotations

import logging
import threading
from typing import Any

import orchestration as df

bp = df.Blueprint()
log = logging.getLogger(__name__)

CATALOG: dict[str, dict[str, int]] = {
    "apple": {"price_cents": 50, "stock": 100},
    "book": {"price_cents": 1250, "stock": 10},
    "lamp": {"price_cents": 3999, "stock": 3},
}

_reservations: dict[str, list[dict[str, Any]]] = {}
_lock = threading.Lock()


class PaymentDeclinedError(RuntimeError):
    """The card was declined."""


@bp.activity_trigger(input_name="order")
def check_inventory(order: dict[str, Any]) -> dict[str, Any]:
    """Whether every item is in stock, the missing SKUs and the total price."""
    missing: list[str] = []
    total = 0
    for item in order["items"]:
        product = CATALOG.get(item["sku"])
        if product is None or item["quantity"] > product["stock"]:
            missing.append(item["sku"])
        else:
            total += product["price_cents"] * item["quantity"]
    return {"available": not missing, "missing": missing, "total_cents": total}


@bp.activity_trigger(input_name="order")
def reserve_inventory(order: dict[str, Any]) -> str:
    """Reserve the order's items; the reservation id."""
    reservation = f"RSV-{order['order_id']}"
    with _lock:
        _reservations[reservation] = list(order["items"])
    return reservation


@bp.activity_trigger(input_name="reservation")
def release_reservation(reservation: str) -> str:
    """Give reserved items back to stock."""
    with _lock:
        _reservations.pop(reservation, None)
    return f"released {reservation}"


@bp.activity_trigger(input_name="payment")
def charge_payment(payment: dict[str, Any]) -> str:
    """Charge the card (a card named "declined" is refused); the payment id."""
    if payment["card"] == "declined":
        raise PaymentDeclinedError(f"card declined for order {payment['order_id']}")
    return f"PAY-{payment['order_id']}-{payment['amount_cents']}"


@bp.activity_trigger(input_name="order")
def ship_order(order: dict[str, Any]) -> str:
    """Hand the order to the carrier; the tracking number."""
    return f"TRK-{order['order_id']}"


@bp.activity_trigger(input_name="notice")
def notify_customer(notice: dict[str, Any]) -> str:
    """Tell the customer (logged here); the message sent."""
    message = f"Order {notice['order_id']}: {notice['message']}"
    log.info("to %s: %s", notice["customer"], message)
    return message
