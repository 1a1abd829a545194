"""Storage bindings declared on activities: kept for the engine in either stacking order,
refused at import when an activity cannot take them, checked against settings at indexing."""

from __future__ import annotations

import azure.functions as func
import pytest

import orchestration as df
from orchestration.functions.activity_bindings import ActivityBindings, binding_data


def test_bindings_below_and_above_the_activity_trigger_are_kept() -> None:
    bp = df.Blueprint()

    @bp.activity_trigger(input_name="job")
    @bp.blob_input(arg_name="source", path="in/{name}", connection="AzureWebJobsStorage")
    def below(job: dict, source: str) -> int:
        return len(source)

    @bp.table_output(
        arg_name="row", table_name="Reports", partition_key="p", row_key="{name}",
        connection="AzureWebJobsStorage",
    )  # fmt: skip
    @bp.function_name("Renamed")
    @bp.activity_trigger(input_name="job")
    def above(job: dict, row: func.Out[str]) -> None:
        row.set("{}")

    kept = {name: a.bindings for name, a in bp._registry.activities.items()}
    assert [(b.name, b.kind, b.direction) for b in kept["below"]] == [("source", "blob", "in")]
    assert [(b.name, b.kind, b.direction) for b in kept["Renamed"]] == [("row", "table", "out")]
    assert kept["Renamed"][0].get("rowKey") == "{name}"


def test_what_an_activity_cannot_take_is_refused_when_the_module_loads() -> None:
    bp = df.Blueprint()
    with pytest.raises(TypeError, match="names no parameter"):

        @bp.activity_trigger(input_name="job")
        @bp.blob_input(arg_name="missing", path="in/x", connection="AzureWebJobsStorage")
        def no_parameter(job: dict) -> None: ...

    with pytest.raises(TypeError, match="return value is its result"):

        @bp.activity_trigger(input_name="job")
        @bp.blob_output(arg_name="$return", path="out/x", connection="AzureWebJobsStorage")
        def returned(job: dict) -> str:
            return ""

    with pytest.raises(TypeError, match="not supported on activities"):

        @bp.activity_trigger(input_name="job")
        @bp.event_hub_output(arg_name="hub", event_hub_name="e", connection="EventHub")
        def event_hub(job: dict, hub: func.Out[str]) -> None: ...

    with pytest.raises(TypeError, match="takes no trigger"):

        @bp.activity_trigger(input_name="job")
        @bp.route(route="x")
        def routed(job: dict) -> None: ...


def test_a_missing_connection_setting_fails_indexing() -> None:
    bindings = ActivityBindings(environ={})
    app = df.Blueprint()

    @app.activity_trigger(input_name="job")
    @app.blob_input(arg_name="source", path="in/{name}", connection="NoSuchStorage")
    def reads(job: dict, source: str) -> int:
        return 0

    declared = app._registry.activities["reads"].bindings
    with pytest.raises(ValueError, match="'NoSuchStorage' does not exist"):
        bindings.check("reads", declared)
    ActivityBindings(environ={"NoSuchStorage": "UseDevelopmentStorage=true"}).check(
        "reads", declared
    )


def test_binding_data_holds_the_input_its_properties_and_the_instance_id() -> None:
    data = binding_data("job", {"name": "a.txt", "size": 3}, "inst-1")
    assert data == {
        "name": "a.txt",
        "size": 3,
        "job": {"name": "a.txt", "size": 3},
        "instanceId": "inst-1",
    }
    assert binding_data("city", "Oslo", "i") == {"city": "Oslo", "instanceId": "i"}
    envelope = {"__class__": "Job", "__module__": "m", "__data__": '{"name": "b"}'}
    assert binding_data("job", envelope, "i")["name"] == "b"
