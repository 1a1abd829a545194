"""A durable app indexes as the Azure Python worker indexes it, with no extension behind it.

On Azure the worker calls `app.get_functions()` and checks every function's parameters
against its bindings; our decorators must pass that with the `azure-functions` library alone.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = [ROOT / "tests" / "apps" / "durable_app" / "function_app.py", ROOT / "function_app.py"]


def load(path: Path) -> ModuleType:
    name = f"_indexed_{path.parent.name}_{abs(hash(path))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", APPS, ids=lambda p: p.parent.name)
def test_every_function_indexes_and_its_parameters_match_its_bindings(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DURABLE_TEST_HUB", "IndexHub")
    # Activities' storage bindings are checked against their connection settings at indexing.
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.syspath_prepend(str(path.parent))
    app = load(path).app
    functions = app.get_functions()
    assert functions
    for function in functions:
        bindings = {b.name for b in function.get_bindings() if b.name != "$return"}
        parameters = set(inspect.signature(function.get_user_function()).parameters)
        assert parameters == bindings, function.get_function_name()
        assert not any(
            b.type.startswith(("durable", "orchestration", "activity"))
            for b in function.get_bindings()
        )
    names = {f.get_function_name() for f in functions}
    assert {
        "durable_orchestrator_worker",
        "durable_activity_worker",
        "durable_timer_sweeper",
        "durable_starts_queue",
        "durable_http_start",
    } <= names


def test_no_http_route_is_under_the_reserved_prefixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DURABLE_TEST_HUB", "IndexHub")
    app = load(APPS[0]).app
    for function in app.get_functions():
        for binding in function.get_bindings():
            route = getattr(binding, "route", None) or ""
            assert not route.startswith(("admin", "runtime/webhooks")), route


def test_a_durable_client_parameter_is_injected_not_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    import azure.functions as func

    import orchestration as df

    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS, app_dir=ROOT)

    @app.route(route="start")
    @app.durable_client_input(client_name="client")
    async def starter(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> str:
        return "ok"

    function = next(f for f in app.get_functions() if f.get_function_name() == "starter")
    assert list(inspect.signature(function.get_user_function()).parameters) == ["req"]


def test_async_orchestrators_are_refused_with_a_clear_message() -> None:
    import azure.functions as func

    import orchestration as df

    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS, app_dir=ROOT)
    with pytest.raises(TypeError, match="generator functions that `yield`"):

        @app.orchestration_trigger(context_name="context")
        async def bad(context: df.DurableOrchestrationContext) -> None:
            return None
