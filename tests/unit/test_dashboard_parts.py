"""The dashboard's pure parts: session tokens, the route table its API dispatches with, the
poison-message reader, its settings, its static files, and (through Node's test runner) the
history model its timeline draws."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestration.azure.queues import QueueMessage
from orchestration.functions.dashboard import static_files
from orchestration.functions.dashboard.routing import RouteTable
from orchestration.functions.dashboard.sessions import DashboardSessions, SessionError
from orchestration.functions.settings import EngineSettings
from orchestration.storage.poison import read

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


# -- sessions -----------------------------------------------------------------------------
def test_a_session_is_valid_until_it_expires() -> None:
    sessions = DashboardSessions(b"k" * 32, timedelta(minutes=30))
    session = sessions.issue(NOW)
    assert session.expires_at == NOW + timedelta(minutes=30)
    assert sessions.check(session.token, NOW + timedelta(minutes=29)) == session.expires_at
    with pytest.raises(SessionError, match="expired"):
        sessions.check(session.token, NOW + timedelta(minutes=30))
    assert sessions.issue(NOW).token != session.token  # each sign-in its own


def test_a_forged_or_foreign_session_is_refused() -> None:
    sessions = DashboardSessions(b"k" * 32)
    token = sessions.issue(NOW).token
    payload, signature = token.split(".")
    later = base64.urlsafe_b64encode(json.dumps({"exp": 9_999_999_999}).encode()).decode()
    for bad in (
        f"{later.rstrip('=')}.{signature}",  # a longer life under the old signature
        f"{payload}.{signature[:-2]}AA",
        DashboardSessions(b"o" * 32).issue(NOW).token,  # another task hub's
        "",
        None,
        "no-dot",
        "a.b.c",
        "é.é",
        "x" * 600,
    ):
        with pytest.raises(SessionError):
            sessions.check(bad, NOW)


def test_a_session_needs_a_long_secret_and_a_positive_lifetime() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        DashboardSessions(b"short")
    with pytest.raises(ValueError, match="positive"):
        DashboardSessions(b"k" * 32, timedelta(0))


# -- the API's route table ----------------------------------------------------------------
def _table() -> RouteTable:
    return RouteTable(
        [
            ("orchestrators/{functionName}/{instanceId?}", "POST", "start"),
            ("durabletask/instances", "GET", "list"),
            ("durabletask/instances/{instanceId}", "GET", "status"),
            ("durabletask/instances/{instanceId}", "DELETE", "purge"),
            ("durabletask/instances/{instanceId}/raiseEvent/{eventName}", "POST", "raise"),
            ("durabletask/poison/{queue}/{messageId}/requeue", "POST", "requeue"),
            ("durabletask/hub", "GET", "hub"),
        ]
    )


def test_the_route_table_fills_route_values() -> None:
    table = _table()
    assert table.match("POST", ["orchestrators", "wf"]) == ("start", {"functionName": "wf"})
    assert table.match("POST", ["orchestrators", "wf", "id-1"]) == (
        "start",
        {"functionName": "wf", "instanceId": "id-1"},
    )
    assert table.match("GET", ["DurableTask", "Instances"]) == ("list", {})
    assert table.match("DELETE", ["durabletask", "instances", "a/b"]) == (
        "purge",
        {"instanceId": "a/b"},
    )
    assert table.match("POST", ["durabletask", "instances", "i", "raiseEvent", "Go"]) == (
        "raise",
        {"instanceId": "i", "eventName": "Go"},
    )


def test_the_route_table_tells_a_wrong_method_from_a_missing_route() -> None:
    table = _table()
    assert table.match("PUT", ["durabletask", "instances", "i"]) == ["GET", "DELETE"]
    assert table.match("GET", ["durabletask", "nothing"]) is None
    assert table.match("GET", ["durabletask", "instances", ""]) is None  # empty id
    assert table.match("GET", ["durabletask", "instances", "i", "extra", "x"]) is None
    assert table.match("POST", ["orchestrators"]) is None
    assert table.match("GET", []) is None


def test_literal_segments_win_over_parameters() -> None:
    table = RouteTable(
        [("durabletask/{thing}", "GET", "param"), ("durabletask/hub", "GET", "literal")]
    )
    assert table.match("GET", ["durabletask", "hub"]) == ("literal", {})
    assert table.match("GET", ["durabletask", "other"]) == ("param", {"thing": "other"})


# -- poison messages ----------------------------------------------------------------------
def _message(text: str) -> QueueMessage:
    return QueueMessage("m-1", "", text, 1, NOW, NOW + timedelta(days=7), None)


def test_an_engine_poison_envelope_gives_its_reason_and_original_body() -> None:
    envelope = json.dumps({"reason": "not JSON", "body": "{oops"})
    found = read("hub-control", _message(envelope), 5)
    assert (found.reason, found.body, found.queue) == ("not JSON", "{oops", "hub-control")
    assert base64.b64decode(found.requeue_text).decode() == "{oops"


def test_a_message_the_host_moved_is_shown_decoded_and_requeued_as_it_was() -> None:
    original = base64.b64encode(b'{"v":1,"k":"control"}').decode()
    found = read("hub-control", _message(original), 7)
    assert found.body == '{"v":1,"k":"control"}'
    assert found.requeue_text == original
    assert "7 times" in found.reason
    # Not base64, not JSON: shown as it is.
    assert read("hub-control", _message("plain words"), 5).body == "plain words"


# -- settings and static files ------------------------------------------------------------
def test_host_json_turns_the_dashboard_off_and_sets_the_session_length(tmp_path: Path) -> None:
    assert EngineSettings.from_host_json(tmp_path).dashboard is True
    (tmp_path / "host.json").write_text(
        json.dumps(
            {"extensions": {"durableTask": {"dashboard": {"enabled": False, "sessionMinutes": 15}}}}
        )
    )
    settings = EngineSettings.from_host_json(tmp_path)
    assert settings.dashboard is False
    assert settings.dashboard_session == timedelta(minutes=15)
    (tmp_path / "host.json").write_text(
        json.dumps({"extensions": {"durableTask": {"dashboard": {"sessionMinutes": 0}}}})
    )
    with pytest.raises(ValueError, match="sessionMinutes"):
        EngineSettings.from_host_json(tmp_path)


def test_the_page_loads_only_its_own_files() -> None:
    files = static_files()
    page = files["index.html"].decode()
    referenced = re.findall(r'(?:src|href)="([^"#:]+)"', page)
    assert referenced and all(name in files for name in referenced), referenced
    scripts = {name: body.decode() for name, body in files.items() if name.endswith(".js")}
    for name, body in scripts.items():
        for imported in re.findall(r'from "\./([^"]+)"', body):
            assert imported in files, (name, imported)
        # No markup from strings, no remote code: values become text nodes only.
        assert "innerHTML" not in body and "eval(" not in body, name
        assert "http://" not in body and "https://" not in body, name
    assert "<script>" not in page  # inline script would need a weaker CSP


def test_the_timeline_model_under_node() -> None:
    node = shutil.which("node")
    assert node, "Node.js is part of the project's setup (Azurite runs on it)"
    result = subprocess.run(
        [node, "--test", str(ROOT / "tests" / "js")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"# pass [1-9]", result.stdout), result.stdout
