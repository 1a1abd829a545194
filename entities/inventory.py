"""Stock as entities: one `inventory` entity per SKU, and an order that reserves from them.

`inventory` keeps `{"available": n, "reserved": {order_id: quantity}}`; its operations run
one at a time, so two orders can never both take the last lamp. `stock_order` reserves every
item of an order at once (parallel `call_entity`), and gives back what it got if any item is
short.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import orchestration as df

bp = df.Blueprint()


class OutOfStockError(RuntimeError):
    """Fewer items available than the reservation asks for."""


def _empty() -> dict[str, Any]:
    return {"available": 0, "reserved": {}}


@bp.entity_trigger(context_name="context")
def inventory(context: df.DurableEntityContext) -> None:
    """restock(n) / reserve({order_id, quantity}) / release(order_id) / get() / delete()."""
    stock = context.get_state(_empty)
    operation = context.operation_name
    if operation == "restock":
        stock["available"] += int(context.get_input())
    elif operation == "reserve":
        request = context.get_input()
        quantity = int(request["quantity"])
        if request["order_id"] in stock["reserved"]:
            context.set_result(stock["available"])  # asked again: already reserved
            return
        if quantity > stock["available"]:
            raise OutOfStockError(
                f"{context.entity_key}: {quantity} asked, {stock['available']} available"
            )
        stock["available"] -= quantity
        stock["reserved"][request["order_id"]] = quantity
    elif operation == "release":
        stock["available"] += stock["reserved"].pop(context.get_input(), 0)
    elif operation == "delete":
        context.destruct_on_exit()
        return
    elif operation != "get":
        raise ValueError(f"inventory has no operation {operation!r}")
    context.set_state(stock)
    context.set_result(stock["available"])


@bp.orchestration_trigger(context_name="context")
def stock_order(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Reserve `items` ([{sku, quantity}]) for `order_id`; all or nothing."""
    order = context.get_input() or {}
    order_id = order.get("order_id", context.instance_id)
    items = order.get("items", [])
    calls = [
        context.call_entity(
            df.EntityId("inventory", item["sku"]),
            "reserve",
            {"order_id": order_id, "quantity": item["quantity"]},
        )
        for item in items
    ]
    try:
        left = yield context.task_all(calls)
    except df.TaskFailedError as failure:
        # Give back whatever was reserved (a release of nothing changes nothing).
        for item in items:
            context.signal_entity(df.EntityId("inventory", item["sku"]), "release", order_id)
        return {"order_id": order_id, "status": "OutOfStock", "error": failure.failure.message}
    return {
        "order_id": order_id,
        "status": "Reserved",
        "left": {item["sku"]: n for item, n in zip(items, left, strict=True)},
    }
