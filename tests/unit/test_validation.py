"""The management API's input checks, without storage: every value is typed or refused, and
OData filters are built only from typed values."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestration.cli import render
from orchestration.core.status import OrchestrationRuntimeStatus as Status
from orchestration.functions.management.dapr import dapr_status
from orchestration.functions.management.openapi import document
from orchestration.functions.management.validation import (
    TABLE_MAX_TIME,
    TABLE_MIN_TIME,
    BadRequest,
    InstanceQuery,
    decode_token,
    encode_token,
    parse_bool,
    parse_datetime,
    parse_event_name,
    parse_instance_id,
    parse_json_body,
    parse_prefix,
    parse_statuses,
    parse_top,
)
from orchestration.instance_query import prefix_clause


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("false", False), ("0", False), ("", False)],
)
def test_booleans(raw: str, expected: bool) -> None:
    assert parse_bool({"x": raw}, "x", False) is expected


def test_a_bad_boolean_names_the_parameter() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_bool({"showHistory": "yes please"}, "showHistory", False)
    assert caught.value.status == 400 and "showHistory" in caught.value.detail
    assert parse_bool({}, "showInput", True) is True


def test_times_are_utc_and_clamped_to_what_tables_keep() -> None:
    assert parse_datetime({"t": "2024-05-01T12:00:00Z"}, "t") == datetime(
        2024, 5, 1, 12, tzinfo=UTC
    )
    assert parse_datetime({"t": "2024-05-01T14:00:00+02:00"}, "t") == datetime(
        2024, 5, 1, 12, tzinfo=UTC
    )
    assert parse_datetime({"t": "2024-05-01"}, "t") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_datetime({"t": "0001-01-01T00:00:00"}, "t") == TABLE_MIN_TIME
    assert parse_datetime({"t": "0001-01-01T00:00:00+05:00"}, "t") == TABLE_MIN_TIME
    assert parse_datetime({"t": "9999-12-31T23:59:59.999999-05:00"}, "t") == TABLE_MAX_TIME
    assert parse_datetime({}, "t") is None
    for bad in ("yesterday", "2024-13-01", "1714560000", "2024-05-01T25:00"):
        with pytest.raises(BadRequest):
            parse_datetime({"createdTimeFrom": bad}, "createdTimeFrom")


@given(st.text(max_size=30))
def test_any_time_text_is_either_a_table_time_or_a_400(text: str) -> None:
    try:
        value = parse_datetime({"t": text}, "t")
    except BadRequest as failure:
        assert failure.status == 400
        return
    assert value is None or TABLE_MIN_TIME <= value <= TABLE_MAX_TIME


def test_top_is_a_whole_number_from_1_to_1000() -> None:
    assert parse_top({"top": "5"}) == 5
    assert parse_top({"top": "1000"}) == 1000
    assert parse_top({}) is None
    for bad in ("0", "-1", "1001", "2.5", "ten", "1e3", "²", "99999999999999999999"):
        with pytest.raises(BadRequest):
            parse_top({"top": bad})


def test_statuses_any_case_comma_separated_or_repeated() -> None:
    assert parse_statuses(["running,Completed", "FAILED"]) == [
        Status.Running,
        Status.Completed,
        Status.Failed,
    ]
    assert parse_statuses(["Running, running"]) == [Status.Running]
    assert parse_statuses([]) == []
    with pytest.raises(BadRequest) as caught:
        parse_statuses(["Running' or RuntimeStatus ne 'x"])
    assert "Completed" in caught.value.detail


def test_ids_and_event_names() -> None:
    assert parse_instance_id("order/42 #1") == "order/42 #1"
    for bad in ("", "x" * 257, "a\x00b", " padded", "tab\t"):
        with pytest.raises(BadRequest):
            parse_instance_id(bad)
    assert parse_event_name("Approval") == "Approval"
    with pytest.raises(BadRequest):
        parse_event_name("e" * 257)


def test_json_bodies() -> None:
    assert parse_json_body(b"", 10) is None
    assert parse_json_body(b' {"a": [1]} ', 100) == {"a": [1]}
    with pytest.raises(BadRequest) as too_big:
        parse_json_body(b"[" + b"1," * 50 + b"1]", 20)
    assert too_big.value.status == 413
    for bad in (
        b"{",
        b"\xff\xfe",
        b"[1,]",
        b"[" * 100_000 + b"]" * 100_000,
        b"[NaN]",
        b"-Infinity",
    ):
        with pytest.raises(BadRequest) as caught:
            parse_json_body(bad, 10**7)
        assert caught.value.status == 400


def test_the_prefix_filter_escapes_quotes_and_key_characters() -> None:
    clause = prefix_clause("it's")
    assert clause == "PartitionKey ge 'it''s' and PartitionKey lt 'it''t'"
    assert prefix_clause("a/b") == "PartitionKey ge 'a%2Fb' and PartitionKey lt 'a%2Fc'"
    assert prefix_clause("\uffff") == "PartitionKey ge '\uffff'"
    assert prefix_clause("a~") == "PartitionKey ge 'a~' and PartitionKey lt 'a\xa0'"
    assert prefix_clause("a\ud7ff") == "PartitionKey ge 'a\ud7ff' and PartitionKey lt 'a\ue000'"
    with pytest.raises(BadRequest):
        parse_prefix({"instanceIdPrefix": "a\x01"})


@given(st.text(min_size=1, max_size=20).filter(lambda t: not re.search(r"[\x00-\x1f\x7f-\x9f]", t)))
def test_a_filter_from_any_prefix_keeps_every_quote_inside_its_literals(prefix: str) -> None:
    filter_text = InstanceQuery(prefix=prefix, statuses=(Status.Running,)).filter() or ""
    # Strip the literals (quotes doubled inside); what remains is only our own syntax.
    outside = re.sub(r"'(?:[^']|'')*'", "''", filter_text)
    assert "'" not in outside.replace("''", "")
    assert re.fullmatch(r"[A-Za-z()' ]+", outside.replace("datetime", "")), outside


def test_the_instance_query_filter() -> None:
    since = datetime(2024, 1, 1, tzinfo=UTC)
    query = InstanceQuery(since, since + timedelta(days=1), (Status.Failed,), "job-")
    assert query.filter() == (
        "((Name lt '@' or Name ge 'A') and "
        "CreatedTime ge datetime'2024-01-01T00:00:00Z' and CreatedTime le "
        "datetime'2024-01-02T00:00:00Z' and (RuntimeStatus eq 'Failed')) and "
        "(PartitionKey ge 'job-' and PartitionKey lt 'job.')"
    )
    assert InstanceQuery().filter() == "((Name lt '@' or Name ge 'A'))"  # no entities
    parsed = InstanceQuery.from_params(
        {
            "runtimeStatus": "Running,Pending",
            "instanceIdPrefix": "p",
            "createdTimeFrom": "2024-01-01",
        }
    )
    assert parsed.statuses == (Status.Running, Status.Pending) and parsed.prefix == "p"
    assert parsed.created_from == datetime(2024, 1, 1, tzinfo=UTC)


def test_continuation_tokens_round_trip_and_foreign_ones_are_refused() -> None:
    token = ("pk%2F1", "state")
    assert decode_token(encode_token(token)) == token
    assert decode_token(encode_token(("pk", None))) == ("pk", None)
    assert encode_token(None) is None
    assert decode_token(None) is None and decode_token("") is None
    for bad in ("not-a-token", "W10", "e30", "x" * 5000, encode_token(("a\x01", "b"))):
        with pytest.raises(BadRequest) as caught:
            decode_token(bad)
        assert caught.value.error == "Invalid continuation token"


def test_dapr_status_names() -> None:
    assert dapr_status(Status.Running) == "RUNNING"
    assert dapr_status(Status.ContinuedAsNew) == "CONTINUED_AS_NEW"
    assert {dapr_status(s) for s in Status} == {
        "RUNNING",
        "COMPLETED",
        "CONTINUED_AS_NEW",
        "FAILED",
        "CANCELED",
        "TERMINATED",
        "PENDING",
        "SUSPENDED",
    }


def test_the_openapi_document_names_every_path_parameter() -> None:
    doc = document("api")
    assert doc["servers"] == [{"url": "/api"}]
    assert document("")["servers"] == [{"url": "/"}]
    json.dumps(doc)
    for path, operations in doc["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for operation in operations.values():
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert declared == names, path
            assert "400" in operation["responses"]


def test_the_cli_timeline_measures_tasks_and_timers() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)

    def at(ms: int) -> str:
        return (t0 + timedelta(milliseconds=ms)).isoformat()

    history = [
        {"EventType": "OrchestratorStarted", "EventId": -1, "Timestamp": at(10)},
        {"EventType": "ExecutionStarted", "EventId": -1, "Timestamp": at(0), "Name": "flow"},
        {"EventType": "TaskScheduled", "EventId": 0, "Timestamp": at(10), "Name": "charge"},
        {"EventType": "TimerCreated", "EventId": 1, "Timestamp": at(10), "FireAt": at(5000)},
        {"EventType": "TaskCompleted", "EventId": -1, "Timestamp": at(260), "TaskScheduledId": 0},
        {"EventType": "TimerFired", "EventId": -1, "Timestamp": at(5010), "TimerId": 1},
        {
            "EventType": "ExecutionCompleted",
            "EventId": 2,
            "Timestamp": at(5020),
            "Status": "Completed",
        },
    ]
    text = render.timeline(history)
    lines = text.splitlines()
    assert lines[0].split() == ["AT", "EVENT", "NAME", "TOOK", "DETAIL"]
    assert not any("OrchestratorStarted" in line for line in lines)
    completed = next(line for line in lines if "TaskCompleted" in line)
    assert "charge" in completed and "250ms" in completed and completed.startswith("+260ms")
    fired = next(line for line in lines if "TimerFired" in line)
    assert "5.0s" in fired
    assert lines[2].startswith("+0ms") and "ExecutionStarted" in lines[2]
