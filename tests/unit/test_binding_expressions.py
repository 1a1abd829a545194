"""Binding expressions as the Functions host resolves them (WebJobs SDK semantics): `{name}`
and `{a.b}` from the binding data, the built-ins `{rand-guid}`, `{DateTime}`, `{sys.*}`, blob
trigger path patterns, and the start-up checks and scope that apply them to a binding."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from orchestration.bindings.apply import (
    Binding,
    BindingError,
    BindingScope,
    check,
    is_storage_binding,
)
from orchestration.bindings.expressions import (
    DEFAULT_DATETIME_FORMAT,
    BindingExpressionError,
    BlobPathPattern,
    SystemValues,
    binding_data_of,
    format_datetime,
    format_guid,
    parameters_of,
    resolve,
    split_blob_path,
)
from orchestration.bindings.store import BindingStores, odata_quote

MOMENT = datetime(2024, 3, 5, 7, 8, 9, 123456, tzinfo=UTC)
AFTERNOON = datetime(2024, 11, 23, 15, 4, 5, tzinfo=UTC)
GUID = uuid.UUID("12345678-9abc-def0-1234-56789abcdef0")
SYSTEM = SystemValues(MOMENT, GUID)


def fill(template: str, data: Mapping[str, Any] | None = None) -> str:
    return resolve(template, data or {}, SYSTEM)


# resolve: binding data


def test_a_named_parameter_takes_its_value_from_the_binding_data() -> None:
    assert fill("out/{name}.txt", {"name": "report"}) == "out/report.txt"


def test_several_parameters_fill_one_template() -> None:
    data = {"p1": "container", "d3": "path/to", "name": "file.1", "ext": "txt"}
    assert (
        fill("{p1}-p2/{d3}/folder/{name}.{ext}", data) == "container-p2/path/to/folder/file.1.txt"
    )


def test_parameter_names_match_the_binding_data_case_insensitively() -> None:
    assert fill("{NAME}/{Name}", {"name": "x"}) == "x/x"


def test_a_dotted_expression_reaches_into_nested_objects() -> None:
    data = {"a": {"b": {"c": 123}}}
    assert fill("container/{a.b.c}", data) == "container/123"


def test_dotted_members_are_matched_case_insensitively() -> None:
    assert fill("{order.CUSTOMER.id}", {"Order": {"customer": {"Id": "c-7"}}}) == "c-7"


def test_an_exact_case_member_wins_over_a_case_insensitive_one() -> None:
    assert fill("{a.name}", {"a": {"Name": "upper", "name": "exact"}}) == "exact"


def test_a_member_after_a_dot_may_hold_a_dash_like_an_http_header() -> None:
    data = {"headers": {"x-request-id": "r-1"}}
    assert fill("{headers.X-Request-Id}", data) == "r-1"


def test_a_missing_parameter_is_an_error_naming_it_and_what_the_data_holds() -> None:
    with pytest.raises(BindingExpressionError) as raised:
        fill("container/{missing}", {"name": "v", "ext": "txt"})
    message = str(raised.value)
    assert "'missing'" in message and "binding data has: ext, name" in message


def test_a_missing_parameter_with_empty_binding_data_says_it_has_nothing() -> None:
    with pytest.raises(BindingExpressionError, match="binding data has: nothing"):
        fill("{name}")


def test_a_missing_nested_member_is_an_error() -> None:
    with pytest.raises(BindingExpressionError, match=re.escape("'a.missing'")):
        fill("container/{a.missing}", {"a": {"b": 1}})


def test_a_dot_into_a_plain_value_is_an_error() -> None:
    with pytest.raises(BindingExpressionError, match=re.escape("'a.b'")):
        fill("{a.b}", {"a": "text"})


def test_a_null_value_fills_in_as_empty_text() -> None:
    assert fill("a{null}b{o.null}c", {"null": None, "o": {"null": None}}) == "abc"


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "True"), (False, "False"), (42, "42"), (-7, "-7"), (2.0, "2"), (1.5, "1.5")],
)
def test_scalar_values_are_written_as_dotnet_writes_them(value: object, text: str) -> None:
    assert fill("{v}", {"v": value}) == text


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2]])
def test_an_object_or_array_cannot_fill_an_expression(value: object) -> None:
    with pytest.raises(BindingExpressionError, match="object or array"):
        fill("{v}", {"v": value})


def test_a_datetime_value_takes_the_hosts_default_format() -> None:
    assert fill("{when}", {"when": AFTERNOON}) == "2024-11-23T15-04-05Z"


def test_a_datetime_value_takes_a_format_after_a_colon() -> None:
    assert fill("{when:yyyy/MM/dd}", {"when": AFTERNOON}) == "2024/11/23"


def test_a_datetime_value_with_an_offset_is_written_in_utc() -> None:
    east = AFTERNOON.astimezone(timezone(timedelta(hours=2)))
    assert fill("{when:HH}", {"when": east}) == "15"


def test_a_format_after_a_text_value_is_ignored() -> None:
    assert fill("{name:N}", {"name": "plain"}) == "plain"


def test_escape_applies_to_binding_data_values_only() -> None:
    data = {"name": "O'Brien"}
    filtered = resolve("Name eq '{name}' and Tag eq 'a''b'", data, SYSTEM, escape=odata_quote)
    assert filtered == "Name eq 'O''Brien' and Tag eq 'a''b'"


def test_escape_leaves_the_built_in_values_alone() -> None:
    assert resolve("{rand-guid}", {}, SYSTEM, escape=lambda v: "X") == str(GUID)


# resolve: template syntax


def test_doubled_braces_are_literal_braces() -> None:
    assert fill("{{2014}}/{name}", {"name": "n"}) == "{2014}/n"


def test_triple_braces_hold_a_parameter_between_literal_braces() -> None:
    assert fill("{{{parameter}}}", {"parameter": "v"}) == "{v}"


def test_a_template_without_parameters_is_returned_unchanged() -> None:
    assert fill("path-with-no-parameters", {"name": "unused"}) == "path-with-no-parameters"


@pytest.mark.parametrize("template", ["malformed-{path", "malformed}-path", "{a{nested}param}"])
def test_an_unbalanced_brace_is_an_error(template: str) -> None:
    with pytest.raises(BindingExpressionError, match="unbalanced brace"):
        fill(template, {"path": "p", "nested": "n"})


@pytest.mark.parametrize(
    "template", ["{}-path", "{malformed-param}", "{ name }", "{1st}", "{a..b}", "{a.}"]
)
def test_a_parameter_that_is_not_an_identifier_is_an_error(template: str) -> None:
    data = {"malformed-param": 1, " name ": 2, "name": 3, "1st": 4, "a": {"b": 5}}
    with pytest.raises(BindingExpressionError, match="invalid parameter"):
        fill(template, data)


# resolve: built-in values


def test_rand_guid_is_the_invocations_guid_in_the_d_format() -> None:
    assert fill("{rand-guid}") == "12345678-9abc-def0-1234-56789abcdef0"


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ("{rand-guid:N}", "123456789abcdef0123456789abcdef0"),
        ("{rand-guid:B}", "{12345678-9abc-def0-1234-56789abcdef0}"),
        ("{rand-guid:P}", "(12345678-9abc-def0-1234-56789abcdef0)"),
        ("{rand-guid:d}", "12345678-9abc-def0-1234-56789abcdef0"),
        ("{rand-guid:}", "12345678-9abc-def0-1234-56789abcdef0"),
        ("{RAND-GUID:n}", "123456789abcdef0123456789abcdef0"),
        ("{sys.randguid:N}", "123456789abcdef0123456789abcdef0"),
        ("{sys.RandGuid}", "12345678-9abc-def0-1234-56789abcdef0"),
    ],
)
def test_rand_guid_takes_dotnets_guid_formats(template: str, text: str) -> None:
    assert fill(template) == text


def test_rand_guid_x_format_is_dotnets_hexadecimal_structure() -> None:
    assert fill("{rand-guid:X}") == (
        "{0x12345678,0x9abc,0xdef0,{0x12,0x34,0x56,0x78,0x9a,0xbc,0xde,0xf0}}"
    )


def test_an_unknown_guid_format_is_an_error() -> None:
    with pytest.raises(BindingExpressionError, match="GUID format 'Q'"):
        fill("{rand-guid:Q}")


def test_every_rand_guid_of_one_invocation_is_the_same_value() -> None:
    first, second, third = fill("{rand-guid}/{rand-guid:N}/{sys.randguid}").split("/")
    assert uuid.UUID(first) == uuid.UUID(second) == uuid.UUID(third) == GUID


def test_datetime_is_the_invocations_utc_time_in_the_hosts_default_format() -> None:
    assert fill("{DateTime}") == "2024-03-05T07-08-09Z"
    assert fill("{sys.utcnow}") == "2024-03-05T07-08-09Z"


def test_datetime_built_ins_take_a_custom_format() -> None:
    assert fill("{DateTime:yyyy-MM-dd}/{sys.UtcNow:HHmm}") == "2024-03-05/0708"


def test_datetime_takes_dotnets_standard_formats() -> None:
    assert fill("{datetime:G}") == "03/05/2024 07:08:09"
    assert fill("{DateTime:o}") == "2024-03-05T07:08:09.1234560Z"
    assert fill("{DateTime:s}") == "2024-03-05T07:08:09"
    assert fill("{DateTime:u}") == "2024-03-05 07:08:09Z"
    assert fill("{DateTime:R}") == "Tue, 05 Mar 2024 07:08:09 GMT"


def test_binding_data_named_datetime_wins_over_the_built_in() -> None:
    assert fill("{DateTime}", {"dateTime": "from-payload"}) == "from-payload"


def test_a_format_after_datetime_always_means_the_built_in() -> None:
    assert fill("{DateTime:yyyy}", {"DateTime": "from-payload"}) == "2024"


def test_binding_data_named_rand_guid_wins_unless_a_format_follows() -> None:
    data = {"rand-guid": "mine"}
    assert fill("{rand-guid}", data) == "mine"
    assert fill("{rand-guid:N}", data) == GUID.hex


def test_sys_values_ignore_binding_data_of_the_same_name() -> None:
    data = {"sys": {"utcnow": "x", "randguid": "y"}}
    assert fill("{sys.utcnow}|{sys.randguid}", data) == f"2024-03-05T07-08-09Z|{GUID}"


def test_resolve_without_system_values_uses_a_fresh_guid_and_the_clock() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    guid, stamp = resolve("{rand-guid}|{DateTime:yyyy-MM-ddTHH:mm:ss}", {}).split("|")
    assert uuid.UUID(guid).version == 4
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    assert before <= moment <= datetime.now(UTC)


def test_system_values_now_are_utc_and_new_each_time() -> None:
    one, two = SystemValues.now(), SystemValues.now()
    assert one.utc_now.tzinfo is UTC and one.rand_guid != two.rand_guid


# format_datetime and format_guid


@pytest.mark.parametrize(
    ("dotnet_format", "text"),
    [
        (DEFAULT_DATETIME_FORMAT, "2024-11-23T15-04-05Z"),
        ("yyyyMMdd", "20241123"),
        ("yy-M-d", "24-11-23"),
        ("%y", "24"),
        ("%d", "23"),
        ("MMMM MMM dddd ddd", "November Nov Saturday Sat"),
        ("hh:mm tt", "03:04 PM"),
        ("h H", "3 15"),
        ("'at' HH 'o''clock'", "at 15 oclock"),
        ('"yyyy" yyyy', "yyyy 2024"),
        ("\\y\\e\\a\\r yyyy", "year 2024"),
        ("MM/yyyy", "11/2024"),
    ],
)
def test_format_datetime_follows_dotnet_custom_format_specifiers(
    dotnet_format: str, text: str
) -> None:
    assert format_datetime(AFTERNOON, dotnet_format) == text


def test_format_datetime_writes_fractions_of_a_second() -> None:
    assert format_datetime(MOMENT, "ss.f ss.ff ss.fff ss.ffffff ss.fffffff") == (
        "09.1 09.12 09.123 09.123456 09.1234560"
    )


def test_format_datetime_writes_midnight_and_noon_on_the_twelve_hour_clock() -> None:
    midnight = datetime(2024, 1, 1, 0, 30, tzinfo=UTC)
    noon = datetime(2024, 1, 1, 12, 30, tzinfo=UTC)
    assert format_datetime(midnight, "hh tt") == "12 AM"
    assert format_datetime(noon, "h tt") == "12 PM"


def test_format_guid_without_a_format_is_the_d_format() -> None:
    assert format_guid(GUID, None) == str(GUID)


# parameters_of


def test_parameters_of_lists_names_in_order_with_formats_dropped() -> None:
    names = parameters_of("{p1}-{{lit}}/{a.b}/{rand-guid:N}/{DateTime:yyyy}/{sys.utcnow}")
    assert names == ["p1", "a.b", "rand-guid", "DateTime", "sys.utcnow"]


def test_parameters_of_a_literal_template_is_empty() -> None:
    assert parameters_of("plain/{{not-a-parameter}}") == []


def test_parameters_of_refuses_an_unbalanced_brace() -> None:
    with pytest.raises(BindingExpressionError, match="unbalanced"):
        parameters_of("}{param}")


def test_parameters_of_refuses_an_invalid_name_as_the_host_does_at_start_up() -> None:
    with pytest.raises(BindingExpressionError, match="invalid parameter"):
        parameters_of("out/{my-name}")


# binding_data_of


def test_binding_data_of_a_json_object_is_its_top_level_properties() -> None:
    payload = {"name": "n", "order": {"id": 1}}
    data = binding_data_of(payload)
    assert data == payload and data is not payload


@pytest.mark.parametrize("payload", [[{"name": "n"}], "text", 3, None])
def test_binding_data_of_anything_but_an_object_is_empty(payload: object) -> None:
    assert binding_data_of(payload) == {}


# BlobPathPattern


def test_a_blob_path_pattern_splits_into_container_and_blob_pattern() -> None:
    pattern = BlobPathPattern.parse("uploads/in/{name}.{ext}")
    assert (pattern.container, pattern.blob_pattern) == ("uploads", "in/{name}.{ext}")
    assert pattern.parameters == ("name", "ext")


def test_a_blob_path_pattern_captures_its_parameters() -> None:
    pattern = BlobPathPattern.parse("container/{name}-{date}.csv")
    assert pattern.match("foo-Jan1st.csv") == {"name": "foo", "date": "Jan1st"}


def test_a_parameter_at_the_end_takes_the_rest_of_the_name() -> None:
    assert BlobPathPattern.parse("container/{name}").match("foo.csv") == {"name": "foo.csv"}


def test_a_parameter_takes_sub_folders() -> None:
    pattern = BlobPathPattern.parse("input/foo/{name}.{extension}")
    assert pattern.match("foo/skip/bar.txt") == {"name": "skip/bar", "extension": "txt"}


def test_a_parameter_is_greedy_up_to_the_last_extension() -> None:
    assert BlobPathPattern.parse("input/{name}.csv").match("a.b.csv") == {"name": "a.b"}
    two = BlobPathPattern.parse("container/{a}.{b}")
    assert two.match("foo.alpha.beta.csv") == {"a": "foo.alpha.beta", "b": "csv"}


def test_greedy_parameters_leave_a_later_literal_its_last_occurrence() -> None:
    pattern = BlobPathPattern.parse("input/{name}.{extension}-/{other}")
    assert pattern.match("foo.bar.txt-/asd-/ijij") == {
        "name": "foo.bar",
        "extension": "txt-/asd",
        "other": "ijij",
    }


def test_a_blob_name_that_does_not_end_like_the_pattern_does_not_match() -> None:
    assert BlobPathPattern.parse("daas-test-input/{name}.txt").match("bob.txtoutput") is None
    assert BlobPathPattern.parse("input/{name}.-/").match("foo.bar.-/txt") is None


def test_blob_name_matching_is_case_sensitive() -> None:
    assert BlobPathPattern.parse("c/In/{name}.txt").match("in/a.txt") is None


def test_pattern_literals_are_not_regular_expressions() -> None:
    pattern = BlobPathPattern.parse("c/data(1)+[x]/{name}.txt")
    assert pattern.match("data(1)+[x]/a.txt") == {"name": "a"}
    assert pattern.match("data1x/a.txt") is None


def test_doubled_braces_in_a_pattern_match_literal_braces() -> None:
    pattern = BlobPathPattern.parse("c/{{2014}}-{name}")
    assert pattern.parameters == ("name",)
    assert pattern.match("{2014}-sound.mp3") == {"name": "sound.mp3"}
    assert pattern.match("2014-sound.mp3") is None


def test_a_parameter_may_match_nothing_as_in_the_host() -> None:
    assert BlobPathPattern.parse("c/{name}.csv").match(".csv") == {"name": ""}


def test_a_blob_name_with_a_newline_still_matches() -> None:
    assert BlobPathPattern.parse("c/{name}").match("a\nb") == {"name": "a\nb"}


def test_a_literal_pattern_matches_only_that_blob() -> None:
    pattern = BlobPathPattern.parse("container/blob.txt")
    assert pattern.parameters == ()
    assert pattern.match("blob.txt") == {} and pattern.match("blob.txt2") is None


def test_a_container_only_pattern_matches_every_blob_in_it() -> None:
    pattern = BlobPathPattern.parse("container")
    assert (pattern.container, pattern.blob_pattern) == ("container", "")
    assert pattern.match("any/blob.bin") == {}


@pytest.mark.parametrize("path", ["container{resolve}/blob", "con}tainer/blob"])
def test_a_container_cannot_hold_a_parameter(path: str) -> None:
    with pytest.raises(BindingExpressionError, match="container name cannot hold a parameter"):
        BlobPathPattern.parse(path)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("c/{p1.p2}", "invalid parameter"),
        ("c/{name:N}", "invalid parameter"),
        ("c/{my-name}", "invalid parameter"),
        ("c/{}", "invalid parameter"),
        ("c/{name}/{name}", "appears twice"),
        ("c/{name", "unbalanced brace"),
        ("c/name}", "unbalanced brace"),
    ],
)
def test_a_malformed_blob_path_pattern_is_refused(path: str, error: str) -> None:
    with pytest.raises(BindingExpressionError, match=error):
        BlobPathPattern.parse(path)


@pytest.mark.parametrize(
    ("path", "prefix"),
    [
        ("c/in/{name}.txt", "in/"),
        ("c/{name}", ""),
        ("c/in/exact.txt", "in/exact.txt"),
        ("c/{{2014}}/{name}", "{2014}/"),
        ("c/a}}b/{name}", "a}b/"),
        ("c", ""),
    ],
)
def test_the_prefix_is_the_literal_start_of_every_matching_name(path: str, prefix: str) -> None:
    assert BlobPathPattern.parse(path).prefix == prefix


# split_blob_path


def test_split_blob_path_separates_the_container_at_the_first_slash() -> None:
    assert split_blob_path("samples/dir/sub/file.txt") == ("samples", "dir/sub/file.txt")


def test_split_blob_path_ignores_a_leading_slash_and_surrounding_space() -> None:
    assert split_blob_path(" /samples/file.txt ") == ("samples", "file.txt")


@pytest.mark.parametrize("path", ["samples", "samples/", "/", "", "/file.txt"])
def test_split_blob_path_needs_a_container_and_a_blob_name(path: str) -> None:
    with pytest.raises(BindingExpressionError, match="must be 'container/blob'"):
        split_blob_path(path)


def test_split_blob_path_may_allow_a_container_alone() -> None:
    assert split_blob_path("samples", allow_empty_blob=True) == ("samples", "")


# apply: the start-up check, with fake setting and connection look-ups

SETTINGS = {"CONTAINER": "docs", "TABLE": "Orders", "BAD": "Bad_Container/x"}


def setting(raw: str) -> str:
    """`%Name%` from SETTINGS, unknown names left as written (as an activity's, for later)."""
    return re.sub(r"%([^%]+)%", lambda m: SETTINGS.get(m.group(1), m.group(0)), raw)


def connection_to(conn_str: str) -> Callable[[str | None], str]:
    return lambda name: conn_str


NO_CONNECTION = connection_to("")
DEV = connection_to("UseDevelopmentStorage=true")


def blob_out(path: str, **extra: Any) -> Binding:
    return Binding("out", "blob", "out", {"path": path, **extra})


def test_check_accepts_a_well_formed_binding() -> None:
    check(blob_out("%CONTAINER%/{name}.txt"), setting, DEV, {"name"}, targets=True)


@pytest.mark.parametrize(
    ("binding", "error"),
    [
        (Binding("q", "queue", "in", {"queueName": "q1"}), "cannot have direction 'in'"),
        (Binding("t", "table", "inout", {"tableName": "T1"}), "cannot have direction 'inout'"),
        (Binding("b", "blob", "out", {}), "needs 'path'"),
        (Binding("t", "table", "in", {"tableName": ""}), "needs 'tableName'"),
        (Binding("q", "queue", "out", {}), "needs 'queueName'"),
    ],
)
def test_check_refuses_a_direction_or_a_missing_property(binding: Binding, error: str) -> None:
    with pytest.raises(BindingError, match=error):
        check(binding, setting, NO_CONNECTION)


def test_check_names_the_binding_and_its_accepted_directions() -> None:
    with pytest.raises(BindingError) as raised:
        check(Binding("orders", "table", "out", {}), setting, NO_CONNECTION)
    assert str(raised.value).startswith("binding 'orders': ")
    with pytest.raises(BindingError, match=r"it takes in, inout, out"):
        check(Binding("b", "Blob", "sideways", {"path": "c/x"}), setting, NO_CONNECTION)


def test_check_refuses_a_malformed_connection_string() -> None:
    with pytest.raises(BindingError, match="invalid storage connection string"):
        check(blob_out("c/x"), setting, connection_to("not a connection string"))


def test_check_passes_the_bindings_connection_name_to_the_look_up() -> None:
    asked: list[str | None] = []

    def connection(name: str | None) -> str:
        asked.append(name)
        return ""

    check(blob_out("c/x", connection="MyStorage"), setting, connection)
    check(blob_out("c/x"), setting, connection)
    assert asked == ["MyStorage", None]


def test_check_refuses_parameters_the_trigger_does_not_provide() -> None:
    with pytest.raises(BindingError) as raised:
        check(blob_out("c/{name}/{other}"), setting, NO_CONNECTION, {"name"})
    message = str(raised.value)
    assert "uses ['other']" in message and "it provides ['name']" in message


def test_check_matches_available_data_case_insensitively_by_its_first_part() -> None:
    binding = Binding(
        "t",
        "table",
        "in",
        {"tableName": "T1", "partitionKey": "{ORDER.customer}", "rowKey": "{Id}"},
    )
    check(binding, setting, NO_CONNECTION, {"order", "id"})


def test_check_always_allows_the_built_in_values() -> None:
    path = "c/{rand-guid}/{sys.randguid}/{DateTime:yyyy}/{sys.utcnow}"
    check(blob_out(path), setting, NO_CONNECTION, set())


def test_check_without_known_binding_data_accepts_any_parameter() -> None:
    check(blob_out("c/{anything}"), setting, NO_CONNECTION, None)


def test_check_examines_the_expression_after_settings_are_resolved() -> None:
    SETTINGS["DEEP"] = "c/{deep}"
    try:
        with pytest.raises(BindingError, match=r"uses \['deep'\]"):
            check(blob_out("%DEEP%"), setting, NO_CONNECTION, set())
    finally:
        del SETTINGS["DEEP"]


@pytest.mark.parametrize(
    "binding",
    [
        blob_out("c/{my-name}"),
        blob_out("c/{name"),
        Binding("q", "queue", "out", {"queueName": "{ q }"}),
        Binding("t", "table", "in", {"tableName": "T1", "filter": "Name eq '{}'"}),
    ],
)
def test_check_refuses_a_malformed_expression(binding: Binding) -> None:
    with pytest.raises(BindingError, match=r"binding '\w+': "):
        check(binding, setting, NO_CONNECTION)


@pytest.mark.parametrize(
    ("binding", "error"),
    [
        (blob_out("%BAD%"), "invalid container name 'Bad_Container'"),
        (blob_out("justacontainer"), "must be 'container/blob'"),
        (Binding("t", "table", "out", {"tableName": "no-dashes"}), "invalid table name"),
        (Binding("q", "queue", "out", {"queueName": "two--hyphens"}), "invalid queue name"),
    ],
)
def test_check_with_targets_refuses_literal_names_storage_would_refuse(
    binding: Binding, error: str
) -> None:
    with pytest.raises(BindingError, match=error):
        check(binding, setting, NO_CONNECTION, targets=True)
    check(binding, setting, NO_CONNECTION)  # only with targets


@pytest.mark.parametrize(
    "binding",
    [
        blob_out("{container}/x"),
        blob_out("%UNKNOWN%/x"),
        Binding("t", "table", "out", {"tableName": "{table}"}),
        Binding("q", "queue", "out", {"queueName": "%QUEUE%"}),
        Binding("q", "queue", "out", {"queueName": "MixedCase"}),
    ],
)
def test_check_with_targets_leaves_names_known_only_later(binding: Binding) -> None:
    check(binding, setting, NO_CONNECTION, targets=True)


def test_check_refuses_take_on_a_blob_input() -> None:
    binding = Binding("b", "blob", "in", {"path": "c/x", "take": 5})
    with pytest.raises(BindingError, match="'take' applies to table bindings"):
        check(binding, setting, NO_CONNECTION)


@pytest.mark.parametrize("take", [0, -1, "abc", "1.5"])
def test_check_refuses_a_take_that_is_not_a_positive_integer(take: object) -> None:
    binding = Binding("t", "table", "in", {"tableName": "T1", "take": take})
    with pytest.raises(BindingError, match="take must be a positive integer"):
        check(binding, setting, NO_CONNECTION)


@pytest.mark.parametrize("take", [1, "50", None, ""])
def test_check_accepts_a_positive_or_absent_take(take: object) -> None:
    check(Binding("t", "table", "in", {"tableName": "T1", "take": take}), setting, NO_CONNECTION)


# apply: BindingScope.text


def scope(data: Mapping[str, Any]) -> BindingScope:
    return BindingScope(data, setting, NO_CONNECTION, BindingStores(), system=SYSTEM)


def test_scope_text_resolves_settings_then_expressions() -> None:
    binding = blob_out("%CONTAINER%/{name}-{rand-guid:N}.txt")
    assert scope({"name": "a"}).text(binding, "path") == f"docs/a-{GUID.hex}.txt"


def test_scope_text_finds_the_property_case_insensitively() -> None:
    binding = Binding("t", "table", "in", {"TableName": "%TABLE%"})
    assert scope({}).text(binding, "tableName") == "Orders"


@pytest.mark.parametrize("properties", [{}, {"rowKey": ""}, {"rowKey": None}])
def test_scope_text_of_an_absent_or_empty_property_is_none(properties: dict[str, Any]) -> None:
    binding = Binding("t", "table", "in", {"tableName": "T1", **properties})
    assert scope({}).text(binding, "rowKey") is None


def test_scope_text_for_odata_quotes_the_values_from_the_data() -> None:
    binding = Binding("t", "table", "in", {"tableName": "T1", "filter": "Name eq '{name}'"})
    text = scope({"name": "x' or true or 'y"}).text(binding, "filter", odata=True)
    assert text == "Name eq 'x'' or true or ''y'"


def test_scope_text_without_odata_leaves_quotes_alone() -> None:
    binding = Binding("t", "table", "in", {"tableName": "T1", "rowKey": "{name}"})
    assert scope({"name": "it's"}).text(binding, "rowKey") == "it's"


def test_scope_text_turns_a_missing_value_into_an_error_naming_the_binding() -> None:
    with pytest.raises(BindingError, match=r"^binding 'out': no value for named parameter"):
        scope({}).text(blob_out("c/{name}"), "path")


# apply: is_storage_binding


@pytest.mark.parametrize(("kind", "expected"), [("blob", True), ("Table", True), ("QUEUE", True)])
def test_blob_table_and_queue_are_storage_bindings(kind: str, expected: bool) -> None:
    assert is_storage_binding(kind) is expected


@pytest.mark.parametrize("kind", ["http", "blobTrigger", "queueTrigger", "cosmosDB", ""])
def test_triggers_and_other_bindings_are_not_storage_bindings(kind: str) -> None:
    assert not is_storage_binding(kind)
