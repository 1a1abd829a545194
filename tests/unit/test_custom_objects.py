"""Custom classes cross every boundary as azure-functions-durable's `to_json`/`from_json`
convention says, and come back as themselves."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestration.core import DurableOrchestrationContext, OrchestrationRuntimeStatus
from orchestration.core.entities import (
    DurableEntityContext,
    EntityBatch,
    EntityId,
    EntitySnapshot,
    OperationRequest,
)
from orchestration.core.serialization import (
    STRICT_TYPING_VARIABLE,
    InvalidPayloadError,
    decode,
    dumps,
)
from tests.unit.simulation import Simulation, run

Context = DurableOrchestrationContext
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Order:
    """DF's documented shape: static to_json(obj) -> str and from_json(str) -> obj."""

    def __init__(self, sku: str, qty: int) -> None:
        self.sku, self.qty = sku, qty

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Order) and (self.sku, self.qty) == (other.sku, other.qty)

    @staticmethod
    def to_json(obj: Order) -> str:
        return json.dumps({"sku": obj.sku, "qty": obj.qty})

    @staticmethod
    def from_json(text: str) -> Order:
        data = json.loads(text)
        return Order(data["sku"], data["qty"])


class Receipt:
    def __init__(self, orders: list[Order], total: int) -> None:
        self.orders, self.total = orders, total

    @staticmethod
    def to_json(obj: Receipt) -> str:
        return json.dumps({"orders": [Order.to_json(o) for o in obj.orders], "total": obj.total})

    @staticmethod
    def from_json(text: str) -> Receipt:
        data = json.loads(text)
        return Receipt([Order.from_json(o) for o in data["orders"]], data["total"])


def test_the_wire_form_is_dfs_envelope_and_decode_rebuilds_it() -> None:
    text = dumps({"first": Order("lamp", 2), "all": [Order("book", 1)]})
    assert text is not None
    wire = json.loads(text)
    assert wire["first"] == {
        "__class__": "Order",
        "__module__": __name__,
        "__data__": '{"sku": "lamp", "qty": 2}',
    }
    assert decode(text) == {"first": Order("lamp", 2), "all": [Order("book", 1)]}


def test_an_unloaded_class_stays_a_plain_dict_and_no_module_is_imported() -> None:
    text = '{"__class__":"Thing","__module__":"module_nobody_loaded","__data__":"{}"}'
    assert decode(text) == json.loads(text)
    import sys

    assert "module_nobody_loaded" not in sys.modules
    # A class without from_json is not a custom class either.
    plain = '{"__class__":"datetime","__module__":"datetime","__data__":"x"}'
    assert decode(plain) == json.loads(plain)


def test_expected_type_rebuilds_and_a_wrong_type_is_logged(caplog: Any) -> None:
    text = dumps(Order("lamp", 2))
    assert decode(text, Order) == Order("lamp", 2)
    with caplog.at_level(logging.WARNING):
        assert decode(dumps([1, 2]), dict) == [1, 2]
    assert "not the expected" in caplog.text


def test_strict_typing_rebuilds_only_with_an_expected_type(monkeypatch: Any) -> None:
    monkeypatch.setenv(STRICT_TYPING_VARIABLE, "1")
    text = dumps(Order("lamp", 2))
    assert decode(text, Order) == Order("lamp", 2)
    with pytest.raises(TypeError, match="expected_type"):
        decode(text)
    with pytest.raises(TypeError, match="not the expected"):
        decode(text, Receipt)


def test_deep_envelopes_are_refused_not_crashed_on() -> None:
    text = '{"__class__":"a","__module__":"b","__data__":' * 900 + "1" + "}" * 900
    with pytest.raises(InvalidPayloadError, match="nested"):
        decode(text)  # the decoder takes it; the rebuild refuses it, never a RecursionError


def test_objects_round_trip_through_activities_orchestrations_and_sub_orchestrations() -> None:
    seen: list[Any] = []

    def price(order: Order) -> Receipt:
        seen.append(order)
        return Receipt([order], order.qty * 10)

    def child(ctx: Context) -> Any:
        order = ctx.get_input()
        receipt = yield ctx.call_activity("price", order)
        return receipt

    def main(ctx: Context) -> Any:
        orders = ctx.get_input()
        receipts = []
        for order in orders:
            receipts.append((yield ctx.call_sub_orchestrator("child", order)))
        direct = yield ctx.call_activity("price", Order("pen", 5), expected_type=Receipt)
        assert isinstance(direct, Receipt)
        return Receipt([o for r in receipts for o in r.orders], sum(r.total for r in receipts))

    sim = Simulation({"main": main, "child": child}, {"price": price})
    instance = sim.start("main", [Order("lamp", 2), Order("book", 3)])
    sim.run()
    assert instance.status is OrchestrationRuntimeStatus.Completed
    assert seen == [Order("lamp", 2), Order("book", 3), Order("pen", 5)]
    output = instance.output
    assert isinstance(output, Receipt)
    assert (output.orders, output.total) == ([Order("lamp", 2), Order("book", 3)], 50)


def test_event_data_and_custom_status_round_trip() -> None:
    def main(ctx: Context) -> Any:
        ctx.set_custom_status(Order("status", 1))
        got = yield ctx.wait_for_external_event("approve", expected_type=Order)
        return [got, ctx.custom_status]

    sim = Simulation({"main": main})
    instance = sim.start("main")
    sim.run()
    sim.raise_event("instance-1", "approve", Order("ok", 9))
    sim.run()
    assert instance.output == [Order("ok", 9), Order("status", 1)]


def test_entity_state_input_and_results_round_trip() -> None:
    def cart(context: DurableEntityContext) -> None:
        orders: list[Order] = context.get_state(list)
        if context.operation_name == "add":
            item = context.get_input(expected_type=Order)
            assert isinstance(item, Order)
            orders.append(item)
            context.set_state(orders)
        context.set_result(orders)

    batch = EntityBatch(EntityId("cart", "k"), cart)
    request = OperationRequest("r1", "add", dumps(Order("lamp", 2)), signal=False,
                               reply_to="caller", reply_execution="x")  # fmt: skip
    first = batch.run(EntitySnapshot(), [request], T0)
    again = OperationRequest("r2", "add", dumps(Order("book", 1)))
    second = batch.run(first.snapshot, [again], T0)
    state = decode(second.snapshot.state)
    assert state == [Order("lamp", 2), Order("book", 1)]


def test_an_activity_passed_as_its_function_is_called_by_its_registered_name() -> None:
    def double(x: int) -> int:
        return x * 2

    double.__durable_name__ = "double"  # type: ignore[attr-defined]  # what the decorator sets

    def main(ctx: Context) -> Any:
        return (yield ctx.call_activity(double, 21))

    _, instance = run(main, activities={"double": double})
    assert instance.output == 42

    def undecorated(x: int) -> int:
        return x

    def wrong(ctx: Context) -> Any:
        return (yield ctx.call_activity(undecorated, 1))

    _, failed = run(wrong)
    assert failed.status is OrchestrationRuntimeStatus.Failed
    assert "not a registered activity function" in (
        failed.failure.message if failed.failure else ""
    )
