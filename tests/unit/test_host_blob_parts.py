"""The pure parts of the host's blob trigger and storage bindings: receipt names, poison
messages, scan bookkeeping, polling, binding data, annotations and start-up checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest

from orchestration.bindings.apply import Binding, BindingError, check
from orchestration.bindings.store import (
    BindingConnectionError,
    BindingStores,
    BlobItem,
    normalize_connection_string,
    quoted_etag,
)
from orchestration.host.app_loader import BindingSpec, FunctionSpec
from orchestration.host.binding_data import (
    blob_binding_data,
    http_binding_data,
    merged,
    queue_binding_data,
)
from orchestration.host.bindings import BindingConfigError
from orchestration.host.blob_receipts import (
    MAX_BLOB_NAME,
    pending,
    poison_message,
    receipt_path,
)
from orchestration.host.blob_trigger import next_interval, polling_intervals
from orchestration.host.settings import BlobOptions, HostConfigError
from orchestration.host.storage_bindings import parameter_annotation


def _function(
    bindings: list[BindingSpec], annotations: dict[str, Any] | None = None
) -> FunctionSpec:
    return FunctionSpec(
        name="f",
        trigger=bindings[0],
        bindings=tuple(bindings),
        func=lambda: None,
        is_async=False,
        parameters=tuple(b.name for b in bindings),
        annotations=annotations or {},
        function_json={},
    )


# Receipts and poison messages


def test_receipt_path_names_host_function_etag_container_and_blob() -> None:
    path = receipt_path("myhost", "on_upload", '"0x8D1"', "uploads", "a/b.txt")
    assert path == "blobreceipts/myhost/Host.Functions.on_upload/0x8D1/uploads/a/b.txt"


def test_a_receipt_path_too_long_for_a_blob_name_stays_unique_and_within_limits() -> None:
    first = receipt_path("h", "f", "0x1", "c", "x" * 1100 + "1")
    second = receipt_path("h", "f", "0x1", "c", "x" * 1100 + "2")
    assert len(first) == len(second) == MAX_BLOB_NAME
    assert first != second
    assert first.startswith("blobreceipts/h/Host.Functions.f/0x1/c/xxx")


def test_another_version_of_a_blob_gets_another_receipt() -> None:
    assert receipt_path("h", "f", "0x1", "c", "b") != receipt_path("h", "f", "0x2", "c", "b")


def test_poison_message_has_the_webjobs_sdk_fields() -> None:
    assert json.loads(poison_message("work", "inbox", "a.txt", '"0x1"')) == {
        "Type": "BlobTrigger",
        "FunctionId": "Host.Functions.work",
        "BlobType": "BlockBlob",
        "ContainerName": "inbox",
        "BlobName": "a.txt",
        "ETag": '"0x1"',
    }


def test_pending_skips_completed_versions_and_running_ones() -> None:
    listed = [BlobItem(n, e, 1, None) for n, e in (("a", "1"), ("b", "1"), ("c", "1"))]
    todo = pending(listed, completed={"a": "1", "b": "0"}, running={("c", "1")})
    assert [item.name for item in todo] == ["b"]  # b changed since it completed


def test_listed_etags_take_their_quoted_http_form() -> None:
    assert quoted_etag("0x8D1") == '"0x8D1"'
    assert quoted_etag('"0x8D1"') == '"0x8D1"'


# Polling


def test_polling_backs_off_while_idle_and_returns_to_busy_when_blobs_come() -> None:
    busy, idle = polling_intervals({})
    assert (busy, idle) == (1.0, 10.0)
    delays = [busy]
    for _ in range(5):
        delays.append(next_interval(delays[-1], False, busy, idle))
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert next_interval(10.0, True, busy, idle) == 1.0


def test_polling_setting_sets_the_idle_interval_and_caps_the_busy_one() -> None:
    assert polling_intervals({"ORCHESTRATION_BLOB_POLLING_INTERVAL": "0.2"}) == (0.2, 0.2)
    assert polling_intervals({"ORCHESTRATION_BLOB_POLLING_INTERVAL": "30"}) == (1.0, 30.0)
    for bad in ("0", "-1", "soon"):
        with pytest.raises(BindingConfigError, match="positive number"):
            polling_intervals({"ORCHESTRATION_BLOB_POLLING_INTERVAL": bad})


def test_blob_options_read_host_json_with_the_extension_defaults() -> None:
    assert BlobOptions.from_json({}).poison_blob_threshold == 5
    options = BlobOptions.from_json({"PoisonBlobThreshold": 2, "maxDegreeOfParallelism": 3})
    assert (options.poison_blob_threshold, options.max_degree_of_parallelism) == (2, 3)
    with pytest.raises(HostConfigError):
        BlobOptions.from_json({"poisonBlobThreshold": 0})


# Binding data


def test_merged_sources_match_names_in_any_case_and_the_later_wins() -> None:
    assert merged({"Id": 1, "x": 1}, {"id": 2}) == {"x": 1, "id": 2}


def test_http_binding_data_route_beats_query_beats_body() -> None:
    body = json.dumps({"name": "body", "only_body": 1, "id": "body"}).encode()
    data = http_binding_data({"id": "route"}, [("name", "query")], {"X-A": "1"}, body)
    assert (data["id"], data["name"], data["only_body"]) == ("route", "query", 1)
    assert data["Query"] == {"name": "query"} and data["Headers"] == {"X-A": "1"}
    assert "only_body" not in http_binding_data({}, [], {}, None)
    assert set(http_binding_data({}, [], {}, b"[1, 2]")) == {"Query", "Headers"}  # no object


def test_queue_binding_data_json_properties_beat_the_metadata() -> None:
    inserted = datetime(2026, 1, 1, tzinfo=UTC)
    body = json.dumps({"id": "mine", "doc": "a.txt"}).encode()
    data = queue_binding_data("msg-1", body, 2, inserted, None, None, "r", properties=True)
    assert (data["id"], data["doc"], data["DequeueCount"]) == ("mine", "a.txt", 2)
    assert data["QueueTrigger"] == body.decode() and data["InsertionTime"] == inserted
    plain = queue_binding_data("msg-1", body, 2, inserted, None, None, "r", properties=False)
    assert plain["Id"] == "msg-1" and "doc" not in plain


def test_blob_binding_data_holds_path_parameters_and_blob_facts() -> None:
    data = blob_binding_data({"name": "a"}, "c", "a.csv", "http://x/c/a.csv", {"Length": 3}, {})
    assert data == {
        "BlobTrigger": "c/a.csv",
        "Uri": "http://x/c/a.csv",
        "Properties": {"Length": 3},
        "Metadata": {},
        "name": "a",
    }


def test_only_bindings_with_expressions_make_a_trigger_parse_its_payload() -> None:
    trigger = BindingSpec("req", "httpTrigger", "in", {"route": "items/{id}"})
    plain = BindingSpec("out", "queue", "out", {"queueName": "q"})
    templated = BindingSpec("doc", "blob", "in", {"path": "docs/{id}"})
    assert not _function([trigger, plain]).uses_binding_data
    assert _function([trigger, plain, templated]).uses_binding_data


def test_optional_annotations_read_as_their_type() -> None:
    trigger = BindingSpec("req", "httpTrigger", "in", {})
    function = _function(
        [trigger], {"a": str | None, "b": func.InputStream | None, "c": bytes, "d": int | str}
    )
    assert parameter_annotation(function, "a") is str
    assert parameter_annotation(function, "b") is func.InputStream
    assert parameter_annotation(function, "c") is bytes
    assert parameter_annotation(function, "d") == int | str
    assert parameter_annotation(function, "missing") is None


# Start-up checks and connections


def _check(binding: Binding, available: set[str] | None = None) -> None:
    check(binding, lambda v: v.replace("%C%", "docs"), lambda name: "", available, targets=True)


def test_start_up_check_refuses_literal_names_storage_would_refuse() -> None:
    with pytest.raises(BindingError, match="invalid container name 'Bad_Name'"):
        _check(Binding("out", "blob", "out", {"path": "Bad_Name/x.txt"}))
    with pytest.raises(BindingError, match="invalid table name"):
        _check(Binding("t", "table", "in", {"tableName": "no-dashes"}))
    with pytest.raises(BindingError, match="must be 'container/blob'"):
        _check(Binding("out", "blob", "out", {"path": "justacontainer"}))
    _check(Binding("out", "blob", "out", {"path": "%C%/{name}"}), {"name"})
    _check(Binding("out", "blob", "out", {"path": "{container}/x"}), {"container"})


def test_start_up_check_refuses_parameters_the_trigger_never_provides() -> None:
    binding = Binding("out", "blob", "out", {"path": "docs/{name}-{rand-guid}-{DateTime}"})
    _check(binding, {"Name"})  # case-insensitive; system values always exist
    with pytest.raises(BindingError, match=r"uses \['name'\], which the trigger does not"):
        _check(binding, {"other"})


async def test_binding_stores_share_one_store_per_account_however_it_is_spelled() -> None:
    dev = normalize_connection_string("UseDevelopmentStorage=true")
    assert "AccountName=devstoreaccount1" in dev and "BlobEndpoint=http://127.0.0.1:10000" in dev
    stores = BindingStores()
    try:
        assert stores.get("UseDevelopmentStorage=true") is stores.get(dev)
        with pytest.raises(BindingConnectionError):
            stores.get("not a connection string")
    finally:
        await stores.close()
