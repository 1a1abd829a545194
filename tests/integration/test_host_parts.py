"""The host's pure parts (routes, schedules, settings, encoding, keys): no Azurite, no process."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestration.host.bindings import BindingConfigError
from orchestration.host.keys import HostKeys, load_keys
from orchestration.host.queue_listener import decode_message, encode_message
from orchestration.host.routes import RouteError, Router, check_not_reserved
from orchestration.host.settings import (
    HostConfigError,
    HostJson,
    QueueOptions,
    format_timespan,
    load_local_settings,
    parse_timespan,
    resolve,
)
from orchestration.host.storage import loopback_ports, normalize_connection_string
from orchestration.host.timer_scheduler import parse_schedule


def _router() -> Router:
    router = Router("api")
    router.add("items/{id:int}", ["GET"], "by_id")
    router.add("items/{name}", ["GET"], "by_name")
    router.add("items/new", ["GET"], "new")
    router.add("len/{code:length(3)}", None, "len3")
    router.add("re/{code:regex(^a+$)}", None, "re")
    router.add("range/{n:range(1,5)}", None, "range")
    return router


@pytest.mark.parametrize(
    ("path", "target", "values"),
    [
        ("/api/items/5", "by_id", {"id": "5"}),
        ("/api/items/abc", "by_name", {"name": "abc"}),
        ("/api/ITEMS/new", "new", {}),
        ("/api/items/a%20b", "by_name", {"name": "a b"}),
        ("/api/len/abc", "len3", {"code": "abc"}),
        ("/api/re/aaa", "re", {"code": "aaa"}),
        ("/api/range/5", "range", {"n": "5"}),
    ],
)
def test_route_matches_by_precedence_and_constraints(
    path: str, target: str, values: dict[str, str]
) -> None:
    found, _ = _router().match("GET", path)
    assert found is not None
    assert (found.route.target, found.values) == (target, values)


@pytest.mark.parametrize("path", ["/api/len/ab", "/api/re/ab", "/api/range/6", "/x/items/1"])
def test_route_rejects_what_constraints_refuse(path: str) -> None:
    assert _router().match("GET", path) == (None, False)


def test_known_path_with_other_method_is_reported_as_known() -> None:
    assert _router().match("DELETE", "/api/items/5") == (None, True)


def test_int_constraint_is_32_bit() -> None:
    router = Router("")
    router.add("n/{v:int}", None, "int")
    assert router.match("GET", "/n/2147483647")[0] is not None
    assert router.match("GET", "/n/2147483648")[0] is None


def test_admin_routes_and_bad_templates_are_refused() -> None:
    with pytest.raises(RouteError, match="built in routes"):
        check_not_reserved("Admin/x")
    check_not_reserved("administrators")
    with pytest.raises(RouteError):
        Router().add("a/{x:nosuch}", None, None)


def test_ncrontab_has_seconds_first() -> None:
    schedule = parse_schedule("*/10 * * * * *")
    start = datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert schedule.next_after(start) == datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    five_minutes = parse_schedule("0 */5 * * * *")
    assert five_minutes.next_after(start) == datetime(2026, 1, 1, 0, 5, tzinfo=UTC)


def test_timespan_schedule_and_invalid_schedules() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_schedule("00:00:30").next_after(start) == start + timedelta(seconds=30)
    for bad in ("* * *", "61 * * * * *", "00:00:00"):
        with pytest.raises(BindingConfigError):
            parse_schedule(bad)


def test_timespans_of_host_json() -> None:
    assert parse_timespan("00:00:02") == timedelta(seconds=2)
    assert parse_timespan("1.02:03:04.5") == timedelta(days=1, hours=2, minutes=3, seconds=4.5)
    with pytest.raises(HostConfigError):
        parse_timespan("soon")
    for text in ("00:00:01", "01:02:03", "2.00:00:00", "00:00:00.250"):
        assert format_timespan(parse_timespan(text)) == text


def test_queue_options_defaults_and_overrides() -> None:
    assert QueueOptions.from_json({}) == QueueOptions()
    options = QueueOptions.from_json({"BatchSize": 4, "messageEncoding": "None"})
    assert (options.batch_size, options.new_batch_threshold, options.message_encoding) == (
        4,
        2,
        "none",
    )
    with pytest.raises(HostConfigError):
        QueueOptions.from_json({"batchSize": 64})


def test_host_json_log_levels_follow_categories_then_default() -> None:
    levels = {"default": "Warning", "Function": "Information", "Function.noisy": "None"}
    host = HostJson(raw={"logging": {"logLevel": levels}})
    assert host.log_level("Function") == logging.INFO
    assert host.log_level("function.other") == logging.INFO  # case-insensitive, by prefix
    assert host.log_level("Function.noisy") > logging.CRITICAL
    assert host.log_level("Host.Results") == logging.WARNING
    assert HostJson().log_level("Function") == logging.INFO


def test_host_json_route_prefix(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text(
        '{"version": "2.0", "extensions": {"http": {"routePrefix": ""}}}'
    )
    assert HostJson.load(tmp_path).route_prefix == ""
    assert HostJson.load(tmp_path / "missing").route_prefix == "api"


def test_local_settings_do_not_override_the_environment(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text(
        '{"IsEncrypted": false, "Values": {"A": "file", "B": "file"}}'
    )
    environ = {"A": "env"}
    load_local_settings(tmp_path, environ)
    assert environ == {"A": "env", "B": "file"}


def test_setting_references_resolve_or_fail_clearly() -> None:
    assert resolve("%Q%-x", {"Q": "work"}) == "work-x"
    with pytest.raises(HostConfigError, match="%Missing%"):
        resolve("%Missing%", {})


def test_base64_is_the_default_message_encoding() -> None:
    assert encode_message("hé", "base64") == "aMOp"
    assert decode_message("aMOp", "base64") == "hé".encode()
    assert encode_message(b"raw", "none") == "raw"
    with pytest.raises(ValueError):
        decode_message("not base64!", "base64")


def test_development_storage_expands_to_loopback_azurite() -> None:
    expanded = normalize_connection_string("UseDevelopmentStorage=true")
    assert "devstoreaccount1" in expanded
    assert loopback_ports(expanded) == ("127.0.0.1", 10000, 10001, 10002)
    assert loopback_ports("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k") is None


def test_auth_levels() -> None:
    keys = HostKeys("master", {"default": "fk"}, {"f1": {"own": "f1k"}})
    assert keys.authorize("anonymous", "f", None)
    assert not keys.authorize("function", "f", None)
    assert keys.authorize("function", "f", "fk")
    assert keys.authorize("function", "f1", "f1k")
    assert not keys.authorize("function", "f2", "f1k")
    assert keys.authorize("function", "f", "master")
    assert not keys.authorize("admin", "f", "fk")
    assert keys.authorize("admin", "f", "master")


def test_keys_are_generated_once_and_persisted(tmp_path: Path) -> None:
    first = load_keys(tmp_path, {})
    assert load_keys(tmp_path, {}) == first
    fixed = load_keys(tmp_path, {"FUNCTIONS_MASTER_KEY": "m", "FUNCTIONS_FUNCTION_KEY": "f"})
    assert (fixed.master, fixed.default_function_key) == ("m", "f")
