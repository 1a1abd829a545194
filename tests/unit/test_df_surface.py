"""azure-functions-durable 1.7.0's public surface, member by member, with DF's parameter
names: an app or test written against DF finds each one here under the same name.

The list was read off DF 1.7.0's source; the README's "Durable Functions API" table says
the same, with notes. v1-only members exist and raise V1ModelError (tested below).
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import orchestration as df
import orchestration.models as models

# member: DF's parameter names ("" for a property or attribute)
SURFACE: dict[Any, dict[str, str]] = {
    df.DurableOrchestrationContext: {
        "call_activity": "name input_ expected_type",
        "call_activity_with_retry": "name retry_options input_ expected_type",
        "call_http": "method uri content headers token_source is_raw_str",
        "call_sub_orchestrator": "name input_ instance_id version expected_type",
        "call_sub_orchestrator_with_retry": "name retry_options input_ instance_id version "
        "expected_type",
        "get_input": "expected_type",
        "new_uuid": "",
        "new_guid": "",
        "task_all": "activities",
        "task_any": "activities",
        "set_custom_status": "status",
        "custom_status": "",
        "histories": "",
        "instance_id": "",
        "is_replaying": "",
        "parent_instance_id": "",
        "current_utc_datetime": "",
        "function_context": "",
        "call_entity": "entityId operationName operationInput expected_type",
        "signal_entity": "entityId operationName operationInput",
        "will_continue_as_new": "",
        "create_timer": "fire_at",
        "wait_for_external_event": "name expected_type",
        "continue_as_new": "input_",
        "version": "",
        "from_json": "json_string",
    },
    df.DurableOrchestrationClient: {
        "start_new": "orchestration_function_name instance_id client_input version",
        "create_check_status_response": "request instance_id",
        "create_http_management_payload": "instance_id",
        "get_client_response_links": "request instance_id",
        "read_entity_state": "entityId task_hub_name connection_name",
        "raise_event": "instance_id event_name event_data task_hub_name connection_name",
        "get_status": "instance_id show_history show_history_output show_input",
        "get_status_all": "",
        "get_status_by": "created_time_from created_time_to runtime_status instance_id_prefix",
        "purge_instance_history": "instance_id",
        "purge_instance_history_by": "created_time_from created_time_to runtime_status",
        "terminate": "instance_id reason",
        "wait_for_completion_or_create_check_status_response": "request instance_id "
        "timeout_in_milliseconds retry_interval_in_milliseconds",
        "signal_entity": "entityId operation_name operation_input task_hub_name connection_name",
        "rewind": "instance_id reason task_hub_name connection_name",
        "suspend": "instance_id reason",
        "resume": "instance_id reason",
        "restart": "instance_id restart_with_new_instance_id",
    },
    df.DurableEntityContext: {
        "entity_name": "",
        "entity_key": "",
        "operation_name": "",
        "is_newly_constructed": "",
        "set_state": "state",
        "get_state": "initializer expected_type",
        "get_input": "expected_type",
        "set_result": "result",
        "destruct_on_exit": "",
        "from_json": "json_str",
    },
    models.DurableOrchestrationStatus: {
        "from_json": "json_obj",
        "to_json": "",
        **{
            name: ""
            for name in (
                "name",
                "instance_id",
                "created_time",
                "last_updated_time",
                "input_",
                "output",
                "runtime_status",
                "custom_status",
                "history",
            )
        },
    },
    df.EntityId: {
        "get_scheduler_id": "entity_id",
        "get_entity_id": "scheduler_id",
        "get_entity_id_url_path": "entity_id",
    },
    df.Blueprint: {
        "orchestration_trigger": "context_name orchestration input_type",
        "activity_trigger": "input_name activity",
        "entity_trigger": "context_name entity_name",
        "durable_client_input": "client_name task_hub connection_name",
    },
    models.PurgeHistoryResult: {"from_json": "json_obj", "instances_deleted": ""},
    models.EntityStateResponse: {"entity_exists": "", "entity_state": ""},
    models.OrchestratorState: {
        name: ""
        for name in (
            "actions",
            "is_done",
            "output",
            "error",
            "custom_status",
            "schema_version",
            "to_json",
            "to_json_string",
        )
    },
    df.Entity: {"create": "fn"},
}

TOP_LEVEL = [
    "Orchestrator",
    "Entity",
    "EntityId",
    "DurableOrchestrationClient",
    "DurableEntityContext",
    "DurableOrchestrationContext",
    "ManagedIdentityTokenSource",
    "OrchestrationRuntimeStatus",
    "RetryOptions",
    "DFApp",
    "Blueprint",
]
MODELS = [
    "DurableOrchestrationBindings",
    "DurableOrchestrationClient",
    "DurableEntityContext",
    "DurableOrchestrationContext",
    "DurableHttpRequest",
    "ManagedIdentityTokenSource",
    "OrchestratorState",
    "OrchestrationRuntimeStatus",
    "PurgeHistoryResult",
    "RetryOptions",
]


def _members() -> list[tuple[Any, str, str]]:
    return [
        (cls, name, params) for cls, members in SURFACE.items() for name, params in members.items()
    ]


def _has(cls: Any, name: str) -> bool:
    import dataclasses

    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    return hasattr(cls, name) or name in fields


@pytest.mark.parametrize(
    ("cls", "name", "params"), _members(), ids=[f"{c.__name__}.{n}" for c, n, _ in _members()]
)
def test_each_member_exists_with_dfs_parameter_names(cls: Any, name: str, params: str) -> None:
    assert _has(cls, name), f"{cls.__name__}.{name} is missing"
    if not params:
        return
    member = inspect.getattr_static(cls, name)
    function = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
    accepted = inspect.signature(function).parameters
    missing = [p for p in params.split() if p not in accepted]
    assert not missing, f"{cls.__name__}.{name} lacks DF's parameters {missing}"


def test_the_top_level_and_models_names_exist() -> None:
    assert [n for n in TOP_LEVEL if not hasattr(df, n)] == []
    assert [n for n in MODELS if not hasattr(models, n)] == []


def test_retry_options_keep_dfs_attribute_names() -> None:
    options = df.RetryOptions(first_retry_interval_in_milliseconds=5, max_number_of_attempts=3)
    assert (options.first_retry_interval_in_milliseconds, options.max_number_of_attempts) == (5, 3)


@pytest.mark.parametrize(
    "call",
    [
        lambda: df.Orchestrator.create(lambda context: None),
        lambda: models.DurableOrchestrationBindings("{}"),
        lambda: df.DurableOrchestrationClient("starter binding string"),  # type: ignore[arg-type]
        lambda: df.DurableOrchestrationContext.from_json("{}"),
        lambda: df.DurableEntityContext.from_json("{}"),
    ],
    ids=[
        "Orchestrator.create",
        "Bindings",
        "client-from-string",
        "context.from_json",
        "entity.from_json",
    ],
)
def test_v1_only_members_say_what_to_write_instead(call: Any) -> None:
    with pytest.raises(df.V1ModelError, match=r"v1 \(function\.json\).*@app\."):
        call()


def test_status_and_purge_results_read_back_their_json_forms() -> None:
    status = models.DurableOrchestrationStatus.from_json(
        {
            "name": "hello",
            "instanceId": "i1",
            "runtimeStatus": "Completed",
            "createdTime": "2026-01-01T00:00:00Z",
            "lastUpdatedTime": "2026-01-01T00:00:01Z",
            "input": [1],
            "output": "done",
            "customStatus": {"at": 2},
        }
    )
    assert (status.name, status.instance_id, status.output, status.input_) == (
        "hello",
        "i1",
        "done",
        [1],
    )
    assert status.runtime_status is df.OrchestrationRuntimeStatus.Completed
    again = models.DurableOrchestrationStatus.from_json(__import__("json").dumps(status.to_json()))
    assert again.to_json() == status.to_json()
    assert models.PurgeHistoryResult.from_json({"instancesDeleted": 3}).instances_deleted == 3
    assert df.EntityId.get_entity_id_url_path(df.EntityId("Cart", "k")) == "entities/Cart/k"


def test_histories_and_function_context_show_the_execution() -> None:
    from tests.unit.simulation import run

    def main(ctx: df.DurableOrchestrationContext) -> Any:
        yield ctx.call_activity("echo", 1)
        kinds = [(h.event_type.value, h.is_played) for h in ctx.histories]
        return [ctx.function_context.function_name, ctx.function_context.instance_id, kinds]

    _, instance = run(main, activities={"echo": lambda x: x})
    name, instance_id, kinds = instance.output
    assert (name, instance_id) == ("main", "instance-1")
    types = [kind for kind, _ in kinds]
    assert types[:2] == ["OrchestratorStarted", "ExecutionStarted"]
    assert "TaskScheduled" in types and types[-1] == "TaskCompleted"
    assert kinds[-1][1] is False  # the event this step applies is new, not replayed
