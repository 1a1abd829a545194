"""azure-functions-durable names that belong only to the v1 (function.json) programming model.

They exist so that code written for it fails at once with a message naming what to write in
the v2 model instead, rather than with an AttributeError or at request time.
"""

from __future__ import annotations

from typing import Any, NoReturn


class V1ModelError(TypeError):
    """A v1-only (function.json) API was used: this engine runs the v2 programming model."""


def _refuse(what: str, instead: str) -> NoReturn:
    raise V1ModelError(
        f"{what} belongs to Durable Functions' v1 (function.json) programming model, which "
        f"this engine does not run. {instead}"
    )


class Orchestrator:
    """DF's v1 wrapper (`main = df.Orchestrator.create(fn)`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _refuse("Orchestrator", _ORCHESTRATOR_INSTEAD)

    @classmethod
    def create(cls, fn: Any) -> NoReturn:
        _refuse("Orchestrator.create(fn)", _ORCHESTRATOR_INSTEAD)


_ORCHESTRATOR_INSTEAD = (
    'Register the generator function with `@app.orchestration_trigger(context_name="context")` '
    "on an `app = df.DFApp()` (or a `df.Blueprint`), and delete its function.json."
)


class DurableOrchestrationBindings:
    """DF's v1 parser of the `starter` binding string."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _refuse("DurableOrchestrationBindings", _CLIENT_INSTEAD)

    @classmethod
    def from_json(cls, json_string: str) -> NoReturn:
        _refuse("DurableOrchestrationBindings.from_json", _CLIENT_INSTEAD)


_CLIENT_INSTEAD = (
    'Get the client with `@app.durable_client_input(client_name="client")` on the starter '
    "function and use the `client` parameter it receives."
)


def refuse_client_binding_string() -> NoReturn:
    """`df.DurableOrchestrationClient(starter)`, v1's way to build a client."""
    _refuse("DurableOrchestrationClient(starter)", _CLIENT_INSTEAD)


def refuse_entity_from_json() -> NoReturn:
    """`DurableEntityContext.from_json(body)`, what v1's Entity.handle does."""
    _refuse(
        "DurableEntityContext.from_json",
        "Entities receive their context from the engine: "
        '`@app.entity_trigger(context_name="context")`.',
    )


def refuse_context_from_json() -> NoReturn:
    """`DurableOrchestrationContext.from_json(body)`, what v1's Orchestrator.handle does."""
    _refuse(
        "DurableOrchestrationContext.from_json",
        "Orchestrators receive their context from the engine: "
        '`@app.orchestration_trigger(context_name="context")`. To unit-test one, see '
        "`orchestration.testing` or drive the generator with a mocked context.",
    )
