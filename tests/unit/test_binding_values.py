"""What storage bindings hand a function and take back (blob content, table entity JSON,
queue message bodies and their encodings), and the names storage would refuse."""

from __future__ import annotations

import base64
import inspect
import io
import json
import re
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest

from orchestration.bindings.store import (
    BindingConnectionError,
    BindingTargetError,
    check_blob_name,
    check_container,
    check_key,
    check_queue,
    check_table,
    normalize_connection_string,
    odata_quote,
    quoted_etag,
)
from orchestration.bindings.values import (
    BindingValueError,
    BlobContent,
    blob_bytes,
    blob_parameter,
    decode_queue_message,
    encode_queue_message,
    queue_bodies,
    table_entities,
    table_json,
    table_parameter,
    unwrap_out,
)

CONTENT = BlobContent(
    container="uploads",
    name="in/report.txt",
    data="héllo".encode(),
    uri="http://127.0.0.1:10000/devstoreaccount1/uploads/in/report.txt",
    properties={"ETag": '"0x1"', "Length": 6, "ContentType": "text/plain"},
    metadata={"owner": "ana"},
)


# BlobContent and blob inputs


def test_blob_content_path_is_container_and_name() -> None:
    assert CONTENT.path == "uploads/in/report.txt"


def test_unwrap_out_gives_the_type_inside_func_out() -> None:
    assert unwrap_out(func.Out[bytes]) is bytes
    assert unwrap_out(str) is str
    assert unwrap_out(func.Out) is func.Out


def test_a_missing_blob_gives_the_parameter_none() -> None:
    assert blob_parameter(None, bytes, "binary") is None


def test_a_bytes_parameter_receives_the_blobs_bytes() -> None:
    assert blob_parameter(CONTENT, bytes, None) == "héllo".encode()


def test_a_str_parameter_receives_the_blob_decoded_as_utf8() -> None:
    assert blob_parameter(CONTENT, str, None) == "héllo"


def test_a_str_parameter_does_not_see_a_byte_order_mark() -> None:
    content = BlobContent("c", "bom.txt", b"\xef\xbb\xbfhi", "http://x/c/bom.txt")
    assert blob_parameter(content, str, None) == "hi"


def test_a_str_parameter_for_a_blob_that_is_not_utf8_is_an_error_naming_it() -> None:
    content = BlobContent("c", "photo.jpg", b"\xff\xd8\xff", "http://x/c/photo.jpg")
    with pytest.raises(BindingValueError, match=re.escape("'c/photo.jpg' is not UTF-8")):
        blob_parameter(content, str, None)


def test_an_input_stream_parameter_receives_the_blob_and_what_the_host_says_of_it() -> None:
    stream = blob_parameter(CONTENT, func.InputStream, None)
    assert isinstance(stream, func.blob.InputStream)
    assert stream.name == "uploads/in/report.txt"
    assert stream.uri == CONTENT.uri
    assert stream.length == 6
    assert stream.blob_properties == {"ETag": '"0x1"', "Length": 6, "ContentType": "text/plain"}
    assert stream.metadata == {"owner": "ana"}
    assert stream.read() == "héllo".encode()


@pytest.mark.parametrize(
    ("data_type", "expected"),
    [("binary", bytes), ("BINARY", bytes), ("string", str), ("String", str)],
)
def test_without_an_annotation_the_data_type_chooses_bytes_or_str(
    data_type: str, expected: type
) -> None:
    assert type(blob_parameter(CONTENT, inspect.Parameter.empty, data_type)) is expected


@pytest.mark.parametrize("data_type", [None, "", "stream"])
def test_without_an_annotation_or_data_type_the_parameter_gets_a_stream(
    data_type: str | None,
) -> None:
    assert isinstance(blob_parameter(CONTENT, Any, data_type), func.InputStream)


def test_the_annotation_wins_over_the_data_type() -> None:
    assert blob_parameter(CONTENT, bytes, "string") == CONTENT.data
    assert blob_parameter(CONTENT, str, "binary") == "héllo"
    assert isinstance(blob_parameter(CONTENT, func.InputStream, "binary"), func.InputStream)


def test_an_out_annotation_is_unwrapped_for_an_inout_blob() -> None:
    assert blob_parameter(CONTENT, func.Out[str], None) == "héllo"


# blob outputs


def test_a_str_blob_output_is_stored_as_utf8() -> None:
    assert blob_bytes("héllo") == b"h\xc3\xa9llo"


@pytest.mark.parametrize("value", [b"\x00\xff", bytearray(b"\x00\xff"), memoryview(b"\x00\xff")])
def test_a_bytes_like_blob_output_is_stored_as_is(value: bytes | bytearray | memoryview) -> None:
    stored = blob_bytes(value)
    assert stored == b"\x00\xff" and type(stored) is bytes


def test_a_readable_stream_blob_output_is_read_to_the_end() -> None:
    assert blob_bytes(io.BytesIO(b"binary")) == b"binary"
    assert blob_bytes(io.StringIO("téxt")) == "téxt".encode()


@pytest.mark.parametrize("value", [None, 42, {"a": 1}, ["x"]])
def test_a_blob_output_refuses_other_values(value: object) -> None:
    with pytest.raises(BindingValueError, match="str, bytes or a readable stream"):
        blob_bytes(value)


# table inputs


def test_no_entity_is_no_json() -> None:
    assert table_json(None) is None


def test_one_entity_is_a_json_object() -> None:
    assert json.loads(table_json({"PartitionKey": "p", "RowKey": "r", "N": 3}) or "") == {
        "PartitionKey": "p",
        "RowKey": "r",
        "N": 3,
    }


def test_a_query_is_a_json_array_even_when_empty() -> None:
    assert table_json([]) == "[]"
    assert json.loads(table_json([{"RowKey": "a"}, {"RowKey": "b"}]) or "") == [
        {"RowKey": "a"},
        {"RowKey": "b"},
    ]


def test_entity_timestamps_are_iso_utc_and_binary_is_base64() -> None:
    entity = {"Timestamp": datetime(2024, 3, 5, 7, 8, 9, tzinfo=UTC), "Blob": b"\x00\x01"}
    assert json.loads(table_json(entity) or "") == {
        "Timestamp": "2024-03-05T07:08:09Z",
        "Blob": "AAE=",
    }


def test_a_table_parameter_annotated_str_or_not_at_all_gets_the_json_text() -> None:
    text = '{"RowKey": "r"}'
    assert table_parameter(text, str) == text
    assert table_parameter(text, inspect.Parameter.empty) == text
    assert table_parameter(text, Any) == text


def test_a_table_parameter_annotated_dict_or_list_gets_the_parsed_json() -> None:
    assert table_parameter('{"RowKey": "r"}', dict[str, Any]) == {"RowKey": "r"}
    assert table_parameter('[{"RowKey": "r"}]', list[dict[str, Any]]) == [{"RowKey": "r"}]
    assert table_parameter("[]", list) == []


def test_a_table_parameter_for_no_entity_is_none_whatever_its_annotation() -> None:
    assert table_parameter(None, dict) is None


# table outputs


def test_a_table_output_takes_one_entity_as_json_text() -> None:
    entities = table_entities('{"PartitionKey": "p", "RowKey": "r", "Size": 8}', None, None)
    assert entities == [{"PartitionKey": "p", "RowKey": "r", "Size": 8}]


def test_a_table_output_takes_an_array_of_entities_as_text_bytes_or_a_value() -> None:
    many = [{"RowKey": "x"}, {"RowKey": "y"}]
    expected = [{"PartitionKey": "p", "RowKey": "x"}, {"PartitionKey": "p", "RowKey": "y"}]
    assert table_entities(json.dumps(many), "p", None) == expected
    assert table_entities(json.dumps(many).encode(), "p", None) == expected
    assert table_entities(many, "p", None) == expected


def test_the_binding_fills_keys_the_entity_lacks() -> None:
    assert table_entities({"Colour": "red"}, "fruit", "apple") == [
        {"Colour": "red", "PartitionKey": "fruit", "RowKey": "apple"}
    ]


def test_keys_in_the_entity_win_over_the_bindings() -> None:
    entities = table_entities({"PartitionKey": "mine", "RowKey": "own"}, "binding", "binding")
    assert entities == [{"PartitionKey": "mine", "RowKey": "own"}]


def test_key_names_in_any_case_are_normalized() -> None:
    entities = table_entities({"partitionkey": "p", "ROWKEY": "r"}, "x", "y")
    assert entities == [{"PartitionKey": "p", "RowKey": "r"}]


def test_read_only_properties_are_not_written_back() -> None:
    entity = {"PartitionKey": "p", "RowKey": "r", "odata.etag": "W/1", "ETag": "1", "Timestamp": 0}
    assert table_entities(entity, None, None) == [{"PartitionKey": "p", "RowKey": "r"}]


def test_a_table_output_does_not_change_the_functions_value() -> None:
    entity = {"Colour": "red", "ETag": "1"}
    table_entities(entity, "p", "r")
    assert entity == {"Colour": "red", "ETag": "1"}


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({"RowKey": "r"}, "needs a string PartitionKey"),
        ({"PartitionKey": "p"}, "needs a string RowKey"),
        ({"PartitionKey": 1, "RowKey": "r"}, "needs a string PartitionKey"),
        ("not json", "takes a JSON object or array"),
        ('"a string"', "not str"),
        ("[1, 2]", "not int"),
        ([{"PartitionKey": "p", "RowKey": "r"}, None], "not NoneType"),
    ],
)
def test_a_table_output_refuses_what_is_not_an_entity_with_keys(value: Any, error: str) -> None:
    with pytest.raises(BindingValueError, match=error):
        table_entities(value, None, None)


# queue outputs


def test_a_str_or_bytes_is_one_message() -> None:
    assert queue_bodies("hello") == ["hello"]
    assert queue_bodies(b"\x00\x01") == [b"\x00\x01"]
    assert queue_bodies(bytearray(b"ab")) == [b"ab"]
    assert type(queue_bodies(bytearray(b"ab"))[0]) is bytes


def test_a_list_or_tuple_is_one_message_per_item() -> None:
    assert queue_bodies(["a", b"b"]) == ["a", b"b"]
    assert queue_bodies(("a", "b")) == ["a", "b"]
    assert queue_bodies([]) == []


def test_json_values_are_sent_as_json_text() -> None:
    assert queue_bodies({"id": 1}) == ['{"id": 1}']
    assert queue_bodies([7, 1.5, True]) == ["7", "1.5", "true"]


def test_a_queue_message_sends_its_body() -> None:
    assert queue_bodies(func.QueueMessage(body=b"from a message")) == [b"from a message"]


@pytest.mark.parametrize("value", [None, object(), [["nested"]], [None]])
def test_a_queue_output_refuses_other_values(value: object) -> None:
    with pytest.raises(BindingValueError, match="cannot write"):
        queue_bodies(value)


def test_base64_encoding_stores_the_utf8_bytes_in_base64() -> None:
    assert encode_queue_message("héllo", "base64") == base64.b64encode("héllo".encode()).decode()
    assert encode_queue_message(b"\x00\xff", "base64") == "AP8="


def test_no_encoding_stores_the_text_itself() -> None:
    assert encode_queue_message("héllo", "none") == "héllo"
    assert encode_queue_message("héllo".encode(), "none") == "héllo"


def test_no_encoding_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(BindingValueError, match="messageEncoding 'none' must be UTF-8"):
        encode_queue_message(b"\xff\xfe", "none")


@pytest.mark.parametrize("body", ["", "plain", "ünïcødé ✓", '{"json": [1, 2]}'])
@pytest.mark.parametrize("encoding", ["base64", "none"])
def test_decoding_an_encoded_message_gives_back_its_utf8_body(body: str, encoding: str) -> None:
    assert decode_queue_message(encode_queue_message(body, encoding), encoding) == body.encode()


def test_decoding_base64_gives_binary_bodies_back_exactly() -> None:
    body = bytes(range(256))
    assert decode_queue_message(encode_queue_message(body, "base64"), "base64") == body


@pytest.mark.parametrize("content", ["not base64!", "QUJ", "é"])
def test_decoding_content_that_is_not_base64_is_a_value_error(content: str) -> None:
    with pytest.raises(ValueError, match="not valid base64"):
        decode_queue_message(content, "base64")


def test_decoding_without_encoding_takes_the_content_as_utf8() -> None:
    assert decode_queue_message("SGk=", "none") == b"SGk="


# store: names storage accepts


@pytest.mark.parametrize("name", ["abc", "a-b-c", "123", "x" * 63, "results-2024"])
def test_valid_container_names_pass(name: str) -> None:
    assert check_container(name) == name


@pytest.mark.parametrize(
    "name", ["ab", "x" * 64, "-abc", "abc-", "a--b", "ABC", "Bad_Name", "a.b", ""]
)
def test_container_names_storage_refuses_are_errors(name: str) -> None:
    with pytest.raises(BindingTargetError, match="invalid container name"):
        check_container(name)


@pytest.mark.parametrize("name", ["a", "dir/sub/file.txt", "x" * 1024, "ünï cødé"])
def test_valid_blob_names_pass(name: str) -> None:
    assert check_blob_name(name) == name


@pytest.mark.parametrize("name", ["", "x" * 1025, "dir/", "file."])
def test_blob_names_storage_refuses_are_errors(name: str) -> None:
    with pytest.raises(BindingTargetError, match="invalid blob name"):
        check_blob_name(name)


@pytest.mark.parametrize("name", ["abc", "Orders", "Table2024", "T" * 63])
def test_valid_table_names_pass(name: str) -> None:
    assert check_table(name) == name


@pytest.mark.parametrize("name", ["ab", "1abc", "no-dashes", "under_score", "T" * 64, ""])
def test_table_names_storage_refuses_are_errors(name: str) -> None:
    with pytest.raises(BindingTargetError, match="invalid table name"):
        check_table(name)


def test_queue_names_are_lowercased_as_the_host_does() -> None:
    assert check_queue("MyQueue-1") == "myqueue-1"


@pytest.mark.parametrize("name", ["ab", "-abc", "abc-", "two--hyphens", "under_score", "q" * 64])
def test_queue_names_storage_refuses_are_errors(name: str) -> None:
    with pytest.raises(BindingTargetError, match="invalid queue name"):
        check_queue(name)


@pytest.mark.parametrize("value", ["", "plain key", "é" * 512])
def test_valid_table_keys_pass(value: str) -> None:
    assert check_key(value, "row key") == value


@pytest.mark.parametrize("value", ["a/b", "a\\b", "a#b", "a?b", "tab\tkey", "é" * 513])
def test_table_keys_storage_refuses_are_errors(value: str) -> None:
    with pytest.raises(BindingTargetError, match="invalid row key"):
        check_key(value, "row key")


def test_odata_quote_doubles_single_quotes() -> None:
    assert odata_quote("O'Brien's") == "O''Brien''s"
    assert odata_quote("plain") == "plain"


@pytest.mark.parametrize(
    ("etag", "quoted"),
    [("0x8DC", '"0x8DC"'), ('"0x8DC"', '"0x8DC"'), ('W/"datetime"', 'W/"datetime"')],
)
def test_quoted_etag_gives_the_http_form(etag: str, quoted: str) -> None:
    assert quoted_etag(etag) == quoted


# store: connection strings


def test_development_storage_is_expanded_to_the_emulators_explicit_string() -> None:
    normalized = normalize_connection_string("UseDevelopmentStorage=true")
    parts = dict(p.split("=", 1) for p in normalized.rstrip(";").split(";"))
    assert parts["AccountName"] == "devstoreaccount1"
    assert parts["BlobEndpoint"].endswith("/devstoreaccount1")
    assert {"QueueEndpoint", "TableEndpoint", "AccountKey"} <= parts.keys()


def test_spellings_of_one_account_normalize_to_the_same_string() -> None:
    tidy = "AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net"
    loose = " AccountName = acct ;; AccountKey=a2V5 ; EndpointSuffix=core.windows.net ; "
    assert normalize_connection_string(tidy) == normalize_connection_string(loose)
    assert normalize_connection_string(tidy) == tidy + ";"


def test_a_base64_key_keeps_its_padding() -> None:
    assert "AccountKey=a2V5cw==;" in normalize_connection_string(
        "AccountName=a;AccountKey=a2V5cw=="
    )


@pytest.mark.parametrize(
    ("conn_str", "error"),
    [
        ("", "empty"),
        ("garbage", "expected Key=Value"),
        ("AccountName=a;accountname=b", "names 'accountname' twice"),
        ("UseDevelopmentStorage=false", "must be 'true'"),
    ],
)
def test_a_malformed_connection_string_is_a_connection_error(conn_str: str, error: str) -> None:
    with pytest.raises(BindingConnectionError, match=error):
        normalize_connection_string(conn_str)
