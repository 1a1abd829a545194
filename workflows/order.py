"""The order process: check stock, reserve, charge, ship, notify; release on a failed payment."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import orchestration as df

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def order_process(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Run one order; custom status names the stage it is in."""
    order = dict(context.get_input() or {})
    order.setdefault("order_id", context.instance_id)
    order.setdefault("customer", "customer@example.com")
    order_id = order["order_id"]

    def notify(message: str) -> Any:
        notice = {"order_id": order_id, "customer": order["customer"], "message": message}
        return context.call_activity("notify_customer", notice)

    context.set_custom_status({"stage": "checking inventory"})
    stock = yield context.call_activity("check_inventory", order)
    if not stock["available"]:
        context.set_custom_status({"stage": "rejected"})
        yield notify(f"out of stock: {', '.join(stock['missing'])}")
        return {"order_id": order_id, "status": "OutOfStock", "missing": stock["missing"]}

    context.set_custom_status({"stage": "reserving"})
    reservation = yield context.call_activity("reserve_inventory", order)

    context.set_custom_status({"stage": "charging payment"})
    payment = {
        "order_id": order_id,
        "card": order.get("card"),
        "amount_cents": stock["total_cents"],
    }
    try:
        payment_id = yield context.call_activity("charge_payment", payment)
    except df.TaskFailedError as failure:
        context.set_custom_status({"stage": "releasing reservation"})
        released = yield context.call_activity("release_reservation", reservation)
        yield notify("payment declined")
        context.set_custom_status({"stage": "payment declined"})
        return {
            "order_id": order_id,
            "status": "PaymentDeclined",
            "error": failure.failure.message,
            "released": released,
        }

    context.set_custom_status({"stage": "shipping"})
    tracking = yield context.call_activity("ship_order", order)
    context.set_custom_status({"stage": "notifying"})
    yield notify(f"shipped, tracking {tracking}")
    context.set_custom_status({"stage": "completed"})
    return {
        "order_id": order_id,
        "status": "Completed",
        "total_cents": stock["total_cents"],
        "reservation": reservation,
        "payment": payment_id,
        "tracking": tracking,
    }
