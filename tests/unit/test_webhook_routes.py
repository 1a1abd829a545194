"""Durable Functions' own webhook paths (/runtime/webhooks/durabletask/...) on the local host:
the engine's DF routes name them, the host's router serves them beside the route prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import orchestration as df
from orchestration.host.routes import RouteError, Router, check_webhook_route

ROOT = Path(__file__).resolve().parents[2]


def _router() -> Router:
    router = Router("api")
    router.add("durabletask/instances/{instanceId}", ["GET"], "status")
    router.add_webhook("durabletask/instances/{instanceId}", ["GET"], "status")
    router.add("orchestrators/{functionName}/{instanceId?}", ["POST"], "start")
    router.add_webhook("durabletask/orchestrators/{functionName}/{instanceId?}", ["POST"], "start")
    router.add("runtime/webhooks/mine", ["GET"], "app route")
    return router


@pytest.mark.parametrize(
    ("method", "path", "target", "values"),
    [
        ("GET", "/runtime/webhooks/durabletask/instances/a%20b", "status", {"instanceId": "a b"}),
        ("GET", "/api/durabletask/instances/x", "status", {"instanceId": "x"}),
        (
            "POST",
            "/runtime/webhooks/durabletask/orchestrators/hello",
            "start",
            {"functionName": "hello"},
        ),
        (
            "POST",
            "/Runtime/Webhooks/DurableTask/orchestrators/hello/id-1",
            "start",
            {"functionName": "hello", "instanceId": "id-1"},
        ),
    ],
)
def test_a_webhook_route_is_served_beside_the_route_prefix(
    method: str, path: str, target: str, values: dict[str, str]
) -> None:
    found, _ = _router().match(method, path)
    assert found is not None
    assert (found.route.target, found.values) == (target, values)


def test_webhook_paths_are_the_hosts_and_prefix_paths_the_apps() -> None:
    router = _router()
    # Below /runtime/webhooks only webhook routes answer, as on Azure, where the host owns it.
    assert router.match("GET", "/runtime/webhooks/other/instances/x") == (None, False)
    assert router.match("GET", "/runtime/webhooks/durabletask/orchestrators/x") == (None, True)
    # A webhook route is not an app route: it is not served below the prefix.
    assert router.match("POST", "/api/durabletask/orchestrators/hello") == (None, False)
    prefixless = Router("")
    prefixless.add("runtime/webhooks/mine", ["GET"], "app route")
    assert prefixless.match("GET", "/runtime/webhooks/mine") == (None, False)


def test_a_webhook_route_must_give_the_function_its_route_values() -> None:
    check_webhook_route(
        "orchestrators/{functionName}/{instanceId?}", "x/{functionName}/{instanceId}"
    )
    with pytest.raises(RouteError, match="parameters"):
        check_webhook_route("durabletask/instances/{instanceId}", "durabletask/instances/{id}")
    with pytest.raises(RouteError):
        check_webhook_route("a/{x}", "a/{x:nosuch}")


def _triggers(app: df.DFApp) -> dict[str, dict[str, Any]]:
    found = {}
    for function in app.get_functions():
        trigger = function.get_trigger()
        if trigger.get_binding_name() == "httpTrigger":
            found[function.get_function_name()] = trigger.get_dict_repr()
    return found


def test_the_df_routes_name_dfs_webhook_paths_and_no_other_route_does() -> None:
    triggers = _triggers(df.DFApp(app_dir=ROOT))
    webhooks = {
        name: (trigger["route"], trigger["webhookRoute"])
        for name, trigger in triggers.items()
        if "webhookRoute" in trigger
    }
    assert webhooks["durable_http_start"] == (
        "orchestrators/{functionName}/{instanceId?}",
        "durabletask/orchestrators/{functionName}/{instanceId?}",
    )
    for name in (
        "durable_instance_status",
        "durable_instances_query",
        "durable_instances_purge",
        "durable_instance_raise_event",
        "durable_instance_terminate",
        "durable_instance_restart",
        "durable_entity_signal",
        "durable_entities_list",
    ):
        route, webhook = webhooks[name]
        assert route == webhook and route.startswith("durabletask/"), name
    assert len(webhooks) == 1 + 5 + 5 + 3  # start; instances; operations; entities
    others = set(triggers) - set(webhooks)
    ours = ("durable_link_", "durable_dapr", "durable_openapi", "durable_hub_", "durable_poison_")
    dashboard = ("durable_dashboard",)
    assert all(n.startswith(ours + dashboard) for n in others), others
