"""`replay-check` finds a plain FunctionApp's orchestrators through its engine's registry,
also those of blueprints that are not module globals."""

from __future__ import annotations

from typing import Any

import azure.functions as func

import orchestration as df
from orchestration.functions.app import registry_of


def _blueprint() -> df.Blueprint:
    bp = df.Blueprint()

    @bp.orchestration_trigger(context_name="context")
    def hidden(context: df.DurableOrchestrationContext) -> Any:
        return (yield context.call_activity("noop", None))

    return bp


def test_a_plain_apps_registry_holds_its_blueprints_orchestrators() -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    assert registry_of(app) is None
    app.register_functions(_blueprint())
    registry = registry_of(app)
    assert registry is not None and "hidden" in registry.orchestrators
    dfapp = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    dfapp.register_functions(_blueprint())
    registry = registry_of(dfapp)
    assert registry is not None and "hidden" in registry.orchestrators


def test_the_openai_agents_preview_decorator_says_what_to_write_instead() -> None:
    import pytest

    with pytest.raises(NotImplementedError, match="orchestration_trigger"):
        df.Blueprint().durable_openai_agent_orchestrator()
