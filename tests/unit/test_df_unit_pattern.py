"""DF's documented unit-testing pattern, and the blueprint shapes, without a host.

azure-functions-durable's decorators return `FunctionBuilder`s; its samples' tests reach the
user's code through `.build().get_user_function()` and drive an orchestrator's generator with
a mocked context. Ours must too, while the decorated names stay callable and the engine gets
the plain functions.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, Mock, call

import azure.functions as func
import pytest
from azure.functions.decorators.function_app import FunctionBuilder

import orchestration as df
from orchestration.testing import OrchestrationTester, orchestrator_generator_wrapper

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "tests" / "apps" / "blueprint_app"
APP_MODULES = ("greetings", "numbers_bp", "function_app")


@pytest.fixture
def sample(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The blueprint sample app, imported fresh (its module holds a plain FunctionApp)."""
    monkeypatch.setenv("DURABLE_TEST_HUB", "UnitHub")
    monkeypatch.syspath_prepend(str(APP_DIR))
    for name in APP_MODULES:
        sys.modules.pop(name, None)
    import function_app  # type: ignore[import-not-found]

    yield function_app
    for name in APP_MODULES:
        sys.modules.pop(name, None)


def test_the_sample_apps_df_style_tests_pass_as_its_user_runs_them() -> None:
    """`pytest tests` in the app's folder: DF's sample tests, with the import changed."""
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=APP_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "5 passed" in run.stdout


def _mock_activity(activity_name: str, input_value: Any) -> Mock:
    task = Mock()
    task.result = f"Hello {input_value}!"
    return task


def test_dfs_orchestrator_pattern_drives_the_generator_with_a_mocked_context(sample: Any) -> None:
    func_call = sys.modules["greetings"].my_orchestrator.build().get_user_function()
    func_call = func_call.orchestrator_function
    context = Mock()
    context.call_activity = Mock(side_effect=_mock_activity)

    values = list(orchestrator_generator_wrapper(func_call(context)))

    assert context.call_activity.call_args_list == [
        call("say_hello", "Tokyo"),
        call("say_hello", "Seattle"),
        call("say_hello", "London"),
    ]
    assert values[-1] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


def test_dfs_client_pattern_calls_the_starter_with_a_mocked_client(sample: Any) -> None:
    func_call = sys.modules["greetings"].start_orchestrator.build().get_user_function()
    func_call = func_call.client_function
    req = func.HttpRequest(method="GET", body=b"{}", url="/api/startOrchestrator")
    client = Mock()
    client.start_new = AsyncMock(return_value="test-instance-id")
    client.create_check_status_response = Mock(return_value="check_status_response")

    assert asyncio.run(func_call(req, client)) == "check_status_response"
    client.start_new.assert_called_once_with("my_orchestrator")
    client.create_check_status_response.assert_called_once_with(req, "test-instance-id")


def test_the_wrapper_throws_a_failed_task_into_the_orchestrator_and_allows_no_yield() -> None:
    class Failed:
        @property
        def result(self) -> Any:
            raise RuntimeError("activity failed")

    def orchestrator(context: Any) -> Generator[Any, Any, str]:
        try:
            yield Failed()
        except RuntimeError as error:
            return f"caught: {error}"
        return "not caught"

    assert list(orchestrator_generator_wrapper(orchestrator(Mock())))[-1] == (
        "caught: activity failed"
    )

    def returns_at_once(context: Any) -> Generator[Any, Any, str]:
        return "done"
        yield  # a generator all the same

    assert list(orchestrator_generator_wrapper(returns_at_once(Mock()))) == ["done"]


bp = df.Blueprint()


class Order:
    def __init__(self, item: str) -> None:
        self.item = item

    @staticmethod
    def to_json(obj: Order) -> str:
        return json.dumps({"item": obj.item})

    @staticmethod
    def from_json(text: str) -> Order:
        return Order(json.loads(text)["item"])


@bp.orchestration_trigger(context_name="context", input_type=Order)
def place(context: df.DurableOrchestrationContext) -> Generator[Any, Any, str]:
    order = context.get_input()
    assert isinstance(order, Order)
    return (yield context.call_activity(pack, order.item))


@bp.activity_trigger(input_name="item", activity="pack_item")
def pack(item: str) -> str:
    return f"packed {item}"


@bp.entity_trigger(context_name="context", entity_name="Tally")
def tally(context: df.DurableEntityContext) -> None:
    context.set_state((context.get_state(lambda: 0) or 0) + 1)


def test_entities_and_activities_reach_their_code_as_in_df() -> None:
    assert tally.build().get_user_function().entity_function is inspect.unwrap(tally)
    assert pack.build().get_user_function()("lamp") == "packed lamp"


def test_decorated_names_stay_callable_and_the_registry_holds_plain_functions() -> None:
    assert pack("book") == "packed book"  # calling the builder calls the function
    assert inspect.signature(pack).parameters.keys() == {"item"}
    assert pack.__name__ == "pack" and inspect.isgenerator(place(Mock()))
    registered = bp._registry.orchestrators["place"]
    assert not isinstance(registered, FunctionBuilder) and inspect.isgeneratorfunction(registered)
    assert bp._registry.activities["pack_item"].function("x") == "packed x"


def test_input_type_rebuilds_the_input_and_a_builder_names_its_activity() -> None:
    assert place.build().get_user_function().__durable_input_type__ is Order
    result = OrchestrationTester(bp).run("place", Order("lamp"))
    assert result.status is df.OrchestrationRuntimeStatus.Completed, result.failure
    assert result.output == "packed lamp"
    assert [c.name for c in result.activity_calls] == ["pack_item"]


def test_function_name_stacked_on_a_durable_trigger_renames_it() -> None:
    local = df.Blueprint()

    @local.function_name("Renamed")
    @local.orchestration_trigger(context_name="context")
    def original(context: df.DurableOrchestrationContext) -> Generator[Any, Any, int]:
        return 1
        yield

    @local.orchestration_trigger(context_name="context")
    @local.function_name("NamedBelow")
    def below(context: df.DurableOrchestrationContext) -> Generator[Any, Any, int]:
        return 2
        yield

    assert set(local._registry.orchestrators) == {"Renamed", "NamedBelow"}
    assert local._function_builders == []  # none of them is a Function to index


def test_shapes_that_cannot_work_are_refused_when_the_module_loads() -> None:
    local = df.Blueprint()
    with pytest.raises(TypeError, match="takes no trigger or binding"):

        @local.route(route="run")
        @local.orchestration_trigger(context_name="context")
        def routed(context: Any) -> Generator[Any, Any, None]:
            yield

    with pytest.raises(TypeError, match="names no parameter"):

        @local.activity_trigger(input_name="city")
        def greet(town: str) -> str:
            return town

    with pytest.raises(TypeError, match="one durable trigger"):

        @local.activity_trigger(input_name="x")
        @local.orchestration_trigger(context_name="context")
        def twice(x: Any) -> Generator[Any, Any, None]:
            yield

    class Bare(func.FunctionRegister):
        def __init__(self) -> None:
            super().__init__(auth_level=func.AuthLevel.ANONYMOUS)

    with pytest.raises(TypeError, match=r"use `orchestration\.DFApp"):
        Bare().register_functions(local)


def _engine_names(app: func.FunctionRegister) -> list[str]:
    return [str(f.get_function_name()) for f in app.get_functions()]


def test_a_plain_app_gets_the_engine_once_with_host_json_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "host.json").write_text(
        json.dumps({"version": "2.0", "extensions": {"durableTask": {"hubName": "PlainHub"}}})
    )
    monkeypatch.setenv("AzureWebJobsScriptRoot", str(tmp_path))
    first, second = df.Blueprint(), df.Blueprint()

    @first.route(route="go")
    @first.durable_client_input(client_name="client")
    async def go(req: func.HttpRequest, client: Any) -> str:
        return "ok"

    @first.orchestration_trigger(context_name="context")
    def one(context: Any) -> Generator[Any, Any, Any]:
        return (yield context.call_activity("two_activity", 1))

    @second.activity_trigger(input_name="n")
    def two_activity(n: int) -> int:
        return n

    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.register_functions(first)
    app.register_functions(second)
    names = _engine_names(app)
    assert names.count("durable_orchestrator_worker") == 1
    assert {"durable_activity_worker", "durable_starts_queue", "durable_timer_sweeper"} <= set(
        names
    )
    assert "durable_http_start" in names and "go" in names
    wiring = app._durable_wiring  # type: ignore[attr-defined]
    assert wiring.engine.settings.hub_name == "PlainHub"
    assert set(wiring.registry.orchestrators) == {"one"}
    assert set(wiring.registry.activities) == {"two_activity"}
    assert first._engine_ref == second._engine_ref == [wiring.engine]
    assert callable(getattr(app, "aclose", None))


def test_a_starter_whose_blueprint_no_app_wired_fails_indexing_not_requests() -> None:
    local = df.Blueprint()

    @local.route(route="go")
    @local.durable_client_input(client_name="client")
    async def go(req: func.HttpRequest, client: Any) -> str:
        return "ok"

    app = func.FunctionApp()
    app._function_builders.extend(local._builders)  # around register_functions
    with pytest.raises(ValueError, match="no app runs the engine"):
        app.get_functions()
    assert go.build().get_user_function().client_function  # a test's bare build() is fine
