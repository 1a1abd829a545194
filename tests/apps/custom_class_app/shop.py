"""The app's own classes, written to DF's documented convention (static to_json/from_json)."""

import json


class Order:
    def __init__(self, sku: str, qty: int) -> None:
        self.sku = sku
        self.qty = qty

    @staticmethod
    def to_json(obj: "Order") -> str:
        return json.dumps({"sku": obj.sku, "qty": obj.qty})

    @staticmethod
    def from_json(json_str: str) -> "Order":
        data = json.loads(json_str)
        return Order(data["sku"], data["qty"])


class Receipt:
    def __init__(self, lines: list, total: int, approved_by: str = "") -> None:
        self.lines = lines
        self.total = total
        self.approved_by = approved_by

    @staticmethod
    def to_json(obj: "Receipt") -> str:
        return json.dumps({"lines": obj.lines, "total": obj.total, "by": obj.approved_by})

    @staticmethod
    def from_json(json_str: str) -> "Receipt":
        data = json.loads(json_str)
        return Receipt(data["lines"], data["total"], data["by"])


class Approval:
    def __init__(self, who: str) -> None:
        self.who = who

    @staticmethod
    def to_json(obj: "Approval") -> str:
        return json.dumps(obj.who)

    @staticmethod
    def from_json(json_str: str) -> "Approval":
        return Approval(json.loads(json_str))
