"""A host extension: the `greeting` input binding (stands in for e.g. a durable client)."""

from __future__ import annotations

from typing import Any

from orchestration.host import BindingHandler, BindingRegistry, BindingSpec, HostContext, Invocation


class GreetingBinding(BindingHandler):
    """Injects the binding's `prefix` property."""

    async def bind_input(
        self, binding: BindingSpec, invocation: Invocation, host: HostContext
    ) -> Any:
        return str(binding.get("prefix", "Hello"))


def register(registry: BindingRegistry) -> None:
    """Extension entry point."""
    registry.add_binding("greeting", GreetingBinding())
