"""Payloads are strict JSON both ways: a stored value can never make a status or a list page
invalid JSON for a strict client."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestration.core import DurableOrchestrationContext, OrchestrationRuntimeStatus
from orchestration.core.serialization import InvalidPayloadError, dumps, loads
from tests.unit.simulation import Simulation

Context = DurableOrchestrationContext
LONE_HIGH = "\ud800"
LONE_LOW = "\udfff"


def strict(text: str) -> Any:
    """What a strict client does: refuse NaN/Infinity and lone surrogates."""

    def refuse(name: str) -> Any:
        raise ValueError(name)

    value = json.loads(text, parse_constant=refuse)
    json.dumps(value, allow_nan=False).encode("utf-8")
    return value


@pytest.mark.parametrize(
    "value",
    [
        float("inf"),
        float("-inf"),
        float("nan"),
        [1, {"x": float("nan")}],
        LONE_HIGH,
        f"a{LONE_LOW}b",
        {LONE_HIGH: 1},
        ["ok", {"deep": [LONE_LOW]}],
    ],
)
def test_values_that_are_not_strict_json_are_refused_on_the_way_in(value: Any) -> None:
    with pytest.raises(InvalidPayloadError):
        dumps(value)


@pytest.mark.parametrize(
    "text",
    ["1e99999", "-1e400", "NaN", "Infinity", "[-Infinity]", '"\\ud800"', '{"\\uDC00": 1}'],
)
def test_text_that_is_not_strict_json_is_refused_on_the_way_in(text: str) -> None:
    with pytest.raises(InvalidPayloadError):
        loads(text)


def test_deep_nesting_is_refused_not_crashed_on() -> None:
    with pytest.raises(InvalidPayloadError, match="nested"):
        loads("[" * 100_000 + "]" * 100_000)
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(InvalidPayloadError, match="nested"):
        dumps(deep)


@pytest.mark.parametrize(
    "value",
    ["😀 emoji", "\\ud800 is text here", {"k\\udfff": ["\U0001f600"]}, 1e308, -0.0, 10**30],
)
def test_unicode_text_and_finite_numbers_round_trip(value: Any) -> None:
    text = dumps(value)
    assert text is not None
    assert loads(text) == value
    assert strict(text) == value


def test_objects_json_cannot_hold_are_a_type_error_as_before() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps(object())


def test_an_activity_returning_nan_fails_its_task_readably() -> None:
    def main(ctx: Context) -> Any:
        try:
            value = yield ctx.call_activity("nan", None)
        except Exception as error:
            return f"caught: {error}"
        return value

    sim = Simulation({"main": main}, {"nan": lambda _: float("nan")})
    instance = sim.start("main")
    sim.run()
    assert instance.status is OrchestrationRuntimeStatus.Completed
    assert "not JSON" in str(instance.output)


def test_an_orchestrator_setting_a_custom_status_that_is_not_json_fails() -> None:
    def main(ctx: Context) -> Any:
        ctx.set_custom_status({"progress": float("inf")})
        yield ctx.call_activity("noop", None)
        return "unreachable"

    sim = Simulation({"main": main}, {"noop": lambda _: None})
    instance = sim.start("main")
    sim.run()
    assert instance.status is OrchestrationRuntimeStatus.Failed


async def test_the_activity_worker_fails_a_result_that_is_not_json() -> None:
    from orchestration.core.history import TaskFailed
    from orchestration.functions.activity_worker import ActivityWorker
    from orchestration.functions.registry import Registry
    from orchestration.storage.messages import ActivityMessage

    class NoStorage:
        async def resolve(self, text: str | None) -> str | None:
            return text

    def nan(value: Any) -> float:
        return float("nan")

    registry = Registry()
    registry.add_activity("nan", nan, "value")
    worker = ActivityWorker(NoStorage(), registry)  # type: ignore[arg-type]
    event = await worker.execute(ActivityMessage("i", "x", 0, "nan", None))
    assert isinstance(event, TaskFailed)
    assert event.failure.error_type == "InvalidPayloadError"


def test_a_steps_activities_are_packed_only_when_the_fan_out_is_wide() -> None:
    from orchestration.storage.messages import (
        MAX_BATCH,
        ActivityBatch,
        ActivityMessage,
        pack_activities,
        parse,
    )

    def messages(n: int) -> list[ActivityMessage]:
        return [ActivityMessage("i", "x", k, "work", str(k)) for k in range(n)]

    assert pack_activities(messages(64)) == messages(64)  # spread: one each
    packed = pack_activities(messages(1000))
    assert all(isinstance(p, ActivityBatch) for p in packed)
    assert [len(p.activities) for p in packed if isinstance(p, ActivityBatch)] == [16] * 62 + [8]
    wide = pack_activities(messages(20_000))
    assert len(wide) == 20_000 // MAX_BATCH
    again = parse(json.loads(json.dumps(wide[3].to_json())))
    assert again == wide[3]  # a batch round-trips through its queue JSON
