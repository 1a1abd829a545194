"""Who may manage instances: the auth levels the engine's routes take, and instance links."""

from __future__ import annotations

import logging
from pathlib import Path

import azure.functions as func
import pytest

import orchestration as df
from orchestration.functions.settings import EngineSettings
from orchestration.storage.links import InstanceLinks

ROOT = Path(__file__).resolve().parents[2]
OWN_LEVEL_ROUTES = ("durable_link_",)
# Anonymous at the host: the page's static files, and the API that checks a session itself.
DASHBOARD_OPEN = {"durable_dashboard", "durable_dashboard_api"}


def levels(app: df.DFApp) -> dict[str, str]:
    """Function name -> authLevel of the engine's HTTP functions."""
    found = {}
    for function in app.get_functions():
        name = function.get_function_name()
        trigger = function.get_trigger()
        if name.startswith("durable_") and trigger.get_binding_name() == "httpTrigger":
            found[name] = str(trigger.get_dict_repr()["authLevel"]).lower()
    return found


@pytest.mark.parametrize(
    ("app_level", "setting", "expected"),
    [
        (func.AuthLevel.ANONYMOUS, "", "function"),
        (func.AuthLevel.FUNCTION, "", "function"),
        (func.AuthLevel.ADMIN, "", "admin"),
        (func.AuthLevel.ANONYMOUS, "admin", "admin"),
        (func.AuthLevel.FUNCTION, "anonymous", "anonymous"),
    ],
)
def test_management_needs_a_key_unless_host_json_opens_it(
    app_level: func.AuthLevel, setting: str, expected: str
) -> None:
    app = df.DFApp(app_level, app_dir=ROOT, settings=EngineSettings(management_auth=setting))
    found = levels(app)
    keyed = {
        n: v
        for n, v in found.items()
        if not n.startswith(OWN_LEVEL_ROUTES) and n not in DASHBOARD_OPEN
    }
    linked = {n: v for n, v in found.items() if n.startswith(OWN_LEVEL_ROUTES)}
    assert "durable_instances_query" in keyed and "durable_http_start" in keyed
    assert "durable_hub_overview" in keyed and "durable_poison_requeue" in keyed
    # The dashboard's sign-in takes the management API's key.
    assert keyed["durable_dashboard_session"] == expected
    assert set(keyed.values()) == {expected}
    # Link routes check the instance's link code themselves.
    assert linked and set(linked.values()) == {"anonymous"}
    assert {found[n] for n in DASHBOARD_OPEN} == {"anonymous"}


def test_the_dashboard_can_be_turned_off() -> None:
    app = df.DFApp(app_dir=ROOT, settings=EngineSettings(dashboard=False))
    assert not [n for n in levels(app) if n.startswith("durable_dashboard")]


def test_an_open_management_api_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="orchestration.management"):
        df.DFApp(app_dir=ROOT, settings=EngineSettings(management_auth="anonymous"))
    assert "anyone" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="orchestration.management"):
        df.DFApp(func.AuthLevel.ANONYMOUS, app_dir=ROOT)
    assert caplog.text == ""


def test_a_link_code_opens_its_own_instance_only() -> None:
    links = InstanceLinks(b"s" * 32)
    code = links.code("order-1")
    assert links.opens("order-1", code)
    assert not links.opens("order-2", code)
    assert not links.opens("order-1", code[:-1] + ("A" if code[-1] != "A" else "B"))
    assert not links.opens("order-1", None) and not links.opens("order-1", "")
    assert not links.opens("order-1", "\udcff")
    assert InstanceLinks(b"t" * 32).code("order-1") != code
    assert links.code("order-1") == code  # stable, so URLs given out keep working


def test_a_short_link_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        InstanceLinks(b"short")
