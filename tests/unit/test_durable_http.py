"""Durable HTTP (`context.call_http`): the request it schedules, DF's 202 polling with
durable timers, and the answer it gives, on histories built by hand."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from orchestration.core import (
    CreateTimer,
    DurableOrchestrationContext,
    HistoryEvent,
    OrchestrationRuntimeStatus,
    ScheduleActivity,
    TaskFailedError,
    TaskScheduled,
)
from orchestration.core.durable_http import (
    HTTP_ACTIVITY,
    REDACTED,
    DurableHttpResponse,
    ManagedIdentityTokenSource,
    recorded_input,
    safe_uri,
)
from orchestration.core.executor import ExecutionResult, execute
from orchestration.functions import http_activity
from orchestration.functions.registry import Registry
from orchestration.storage.names import InvalidNameError
from tests.unit.factories import at, completed, execution_started, failed, started, timer_fired

Context = DurableOrchestrationContext
URL = "http://api.example/jobs"


def call_and_return(ctx: Context) -> Any:
    response = yield ctx.call_http("GET", URL)
    return response


def answer(status: int, headers: dict[str, Any] | None = None, content: str = "") -> Any:
    return {"statusCode": status, "headers": headers or {}, "content": content}


class Steps:
    """Runs one orchestrator step after another by full replay, keeping the history."""

    def __init__(self, orchestrator: Any) -> None:
        self.orchestrator = orchestrator
        self.history: list[HistoryEvent] = []

    def step(self, new_events: Sequence[HistoryEvent]) -> ExecutionResult:
        result = execute(self.orchestrator, "i", self.history, list(new_events))
        self.history.extend(result.new_events)
        return result


def request_of(action: Any) -> dict[str, Any]:
    assert isinstance(action, ScheduleActivity) and action.name == HTTP_ACTIVITY
    decoded: dict[str, Any] = json.loads(action.input or "null")
    return decoded


def test_call_http_schedules_the_built_in_http_activity_with_dfs_request_json() -> None:
    result = Steps(call_and_return).step([started(), execution_started()])
    (action,) = result.actions
    assert request_of(action) == {
        "method": "GET",
        "uri": URL,
        "content": None,
        "headers": None,
        "tokenSource": None,
    }
    assert result.status is OrchestrationRuntimeStatus.Running


@pytest.mark.parametrize(
    ("content", "is_raw_str", "sent"),
    [
        ({"name": "Oslo", "n": 1}, False, json.dumps({"name": "Oslo", "n": 1})),
        ([1, 2], False, "[1, 2]"),
        ("plain", False, '"plain"'),
        ("<xml/>", True, "<xml/>"),
    ],
)
def test_content_is_json_encoded_unless_a_raw_str(
    content: Any, is_raw_str: bool, sent: str
) -> None:
    def orchestrator(ctx: Context) -> Any:
        yield ctx.call_http("POST", URL, content, is_raw_str=is_raw_str)

    (action,) = Steps(orchestrator).step([started(), execution_started()]).actions
    assert request_of(action)["content"] == sent
    assert request_of(action)["method"] == "POST"


def test_is_raw_str_with_content_that_is_not_a_str_fails_the_orchestration() -> None:
    def orchestrator(ctx: Context) -> Any:
        yield ctx.call_http("POST", URL, {"a": 1}, is_raw_str=True)

    result = Steps(orchestrator).step([started(), execution_started()])
    assert result.status is OrchestrationRuntimeStatus.Failed
    assert result.failure is not None and "is_raw_str" in result.failure.message


def test_a_202_with_location_is_polled_after_a_durable_timer_until_the_final_answer() -> None:
    steps = Steps(call_and_return)
    steps.step([started(0), execution_started()])
    accepted = answer(202, {"Location": "http://api.example/status/1"})
    second = steps.step([started(1), completed(0, accepted)])
    assert second.actions == (CreateTimer(1, at(1) + timedelta(seconds=30)),)
    third = steps.step([started(31), timer_fired(1, at(31))])
    (poll,) = third.actions
    assert poll.id == 2
    assert request_of(poll) == {
        "method": "GET",
        "uri": "http://api.example/status/1",
        "content": None,
        "headers": None,
        "tokenSource": None,
    }
    final = steps.step([started(32), completed(2, answer(200, {"X-Job": "1"}, '{"done":true}'))])
    assert final.status is OrchestrationRuntimeStatus.Completed
    assert json.loads(final.output or "null") == answer(200, {"X-Job": "1"}, '{"done":true}')


def test_retry_after_in_seconds_sets_the_polling_timer() -> None:
    steps = Steps(call_and_return)
    steps.step([started(0), execution_started()])
    accepted = answer(202, {"location": "/status/1", "retry-after": "5"})
    result = steps.step([started(2), completed(0, accepted)])
    assert result.actions == (CreateTimer(1, at(2) + timedelta(seconds=5)),)


def test_retry_after_as_an_http_date_sets_the_polling_timer() -> None:
    steps = Steps(call_and_return)
    steps.step([started(0), execution_started()])
    when = at(2) + timedelta(seconds=90)
    accepted = answer(202, {"Location": "/s", "Retry-After": format_datetime(when, usegmt=True)})
    result = steps.step([started(2), completed(0, accepted)])
    assert result.actions == (CreateTimer(1, when),)


def test_a_relative_location_is_polled_relative_to_the_request() -> None:
    steps = Steps(call_and_return)
    steps.step([started(0), execution_started()])
    steps.step([started(1), completed(0, answer(202, {"Location": "status/7"}))])
    (poll,) = steps.step([started(31), timer_fired(1, at(31))]).actions
    assert request_of(poll)["uri"] == "http://api.example/status/7"


def test_polling_goes_on_while_the_answer_is_202_with_a_location() -> None:
    steps = Steps(call_and_return)
    steps.step([started(0), execution_started()])
    steps.step([started(1), completed(0, answer(202, {"Location": "/a"}))])
    steps.step([started(31), timer_fired(1, at(31))])
    again = steps.step([started(32), completed(2, answer(202, {"Location": "/b"}))])
    assert again.actions == (CreateTimer(3, at(32) + timedelta(seconds=30)),)
    (poll,) = steps.step([started(62), timer_fired(3, at(62))]).actions
    assert request_of(poll)["uri"] == "http://api.example/b"


def test_a_202_without_location_is_the_final_answer() -> None:
    steps = Steps(call_and_return)
    steps.step([started(0), execution_started()])
    result = steps.step([started(1), completed(0, answer(202, {}, "queued"))])
    assert result.status is OrchestrationRuntimeStatus.Completed
    assert json.loads(result.output or "null")["statusCode"] == 202


def test_a_non_2xx_answer_is_a_response_not_a_failure() -> None:
    def orchestrator(ctx: Context) -> Any:
        response = yield ctx.call_http("GET", URL)
        return [response.status_code, response["statusCode"], response.content]

    steps = Steps(orchestrator)
    steps.step([started(0), execution_started()])
    result = steps.step([started(1), completed(0, answer(500, {}, "down"))])
    assert result.status is OrchestrationRuntimeStatus.Completed
    assert json.loads(result.output or "null") == [500, 500, "down"]


def test_a_request_that_could_not_be_sent_raises_task_failed_error_at_the_yield() -> None:
    def orchestrator(ctx: Context) -> Any:
        try:
            yield ctx.call_http("GET", "http://user:pw@api.example/jobs?code=secret")
        except TaskFailedError as error:
            return [str(error), error.failure.error_type]
        return None

    steps = Steps(orchestrator)
    steps.step([started(0), execution_started()])
    result = steps.step([started(1), failed(0, "DurableHttpError", "could not be sent")])
    message, error_type = json.loads(result.output or "null")
    assert error_type == "DurableHttpError"
    assert message.startswith("HTTP GET http://api.example/jobs failed: DurableHttpError")
    assert "secret" not in message and "pw" not in message


def test_a_failed_poll_fails_the_task() -> None:
    steps = Steps(call_and_return)
    steps.step([started(0), execution_started()])
    steps.step([started(1), completed(0, answer(202, {"Location": "/s"}))])
    steps.step([started(31), timer_fired(1, at(31))])
    result = steps.step([started(32), failed(2, "DurableHttpError", "timed out")])
    assert result.status is OrchestrationRuntimeStatus.Failed
    assert result.failure is not None
    assert "HTTP GET http://api.example/s failed" in result.failure.message


def test_replaying_the_whole_history_gives_the_same_actions_and_answer() -> None:
    steps = Steps(call_and_return)
    batches: list[list[HistoryEvent]] = [
        [started(0), execution_started()],
        [started(1), completed(0, answer(202, {"Location": "/s", "Retry-After": "3"}))],
        [started(4), timer_fired(1, at(4))],
        [started(5), completed(2, answer(200, {}, "ok"))],
    ]
    live = [steps.step(batch) for batch in batches]
    replayed_before = len(steps.history) - len(live[-1].new_events)
    again = execute(call_and_return, "i", steps.history[:replayed_before], batches[-1])
    assert again.actions == live[-1].actions
    assert again.output == live[-1].output
    for index in range(1, len(batches)):
        before = sum(len(r.new_events) for r in live[:index])
        repeat = execute(call_and_return, "i", steps.history[:before], batches[index])
        assert repeat.actions == live[index].actions
        assert repeat.status is live[index].status


def test_history_records_credential_headers_redacted_but_the_activity_gets_them() -> None:
    headers = {"Authorization": "Bearer s3cret", "x-functions-key": "k3y", "Accept": "text/csv"}

    def orchestrator(ctx: Context) -> Any:
        response = yield ctx.call_http("GET", URL, headers=headers)
        return response.status_code

    steps = Steps(orchestrator)
    first = steps.step([started(0), execution_started()])
    assert request_of(first.actions[0])["headers"] == headers
    (recorded,) = [e for e in first.new_events if isinstance(e, TaskScheduled)]
    assert "s3cret" not in (recorded.input or "") and "k3y" not in (recorded.input or "")
    assert json.loads(recorded.input or "null")["headers"] == {
        "Authorization": REDACTED,
        "x-functions-key": REDACTED,
        "Accept": "text/csv",
    }
    steps.step([started(1), completed(0, answer(202, {"Location": "/s"}))])
    (poll,) = steps.step([started(31), timer_fired(1, at(31))]).actions
    # The poll is rebuilt from the code, not from history: it keeps the real Authorization,
    # and, as in DF, drops the function key (a status endpoint wants its own).
    assert request_of(poll)["headers"] == {"Authorization": "Bearer s3cret", "Accept": "text/csv"}


def test_recorded_input_leaves_other_activities_alone() -> None:
    text = '{"headers":{"Authorization":"x"}}'
    assert recorded_input("my_activity", text) == text


def test_a_token_source_travels_as_dfs_json_without_any_token() -> None:
    def orchestrator(ctx: Context) -> Any:
        source = ManagedIdentityTokenSource("https://management.core.windows.net/")
        yield ctx.call_http("GET", URL, token_source=source)

    (action,) = Steps(orchestrator).step([started(), execution_started()]).actions
    assert request_of(action)["tokenSource"] == {
        "resource": "https://management.core.windows.net/",
        "kind": "AzureManagedIdentity",
    }


def test_durable_http_response_reads_as_dfs_dict_and_as_attributes() -> None:
    response = DurableHttpResponse(201, {"Content-Type": "application/json"}, '{"id": 3}')
    assert response["statusCode"] == response.status_code == 201
    assert response.get_header("content-type") == "application/json"
    assert response.json() == {"id": 3}
    expected = answer(201, {"Content-Type": "application/json"}, '{"id": 3}')
    assert json.loads(json.dumps(response)) == expected
    assert DurableHttpResponse.from_json(json.dumps(response)) == response


def test_safe_uri_drops_user_info_query_and_fragment() -> None:
    assert safe_uri("https://u:p@h.example:8443/a/b?code=x#f") == "https://h.example:8443/a/b"


def test_the_built_in_name_cannot_be_registered_by_an_app() -> None:
    with pytest.raises(InvalidNameError):
        Registry().add_activity(HTTP_ACTIVITY, lambda request: request)


async def test_managed_identity_without_azure_identity_fails_naming_the_package() -> None:
    try:
        import azure.identity  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("azure-identity is installed here")
    request = {
        "method": "GET",
        "uri": "http://127.0.0.1:9/never",
        "content": None,
        "headers": None,
        "tokenSource": {"resource": "https://graph.microsoft.com", "kind": "AzureManagedIdentity"},
    }
    with pytest.raises(http_activity.TokenSourceUnavailableError, match="'azure-identity'"):
        await http_activity.run(request)


def test_calls_fan_out_and_each_polls_on_its_own_timer() -> None:
    def orchestrator(ctx: Context) -> Any:
        calls = [ctx.call_http("GET", f"{URL}/{n}") for n in (1, 2)]
        responses = yield ctx.task_all(calls)
        return [r.content for r in responses]

    steps = Steps(orchestrator)
    first = steps.step([started(0), execution_started()])
    assert [a.id for a in first.actions] == [0, 1]
    second = steps.step(
        [started(1), completed(0, answer(202, {"Location": "/s/1"})), completed(1, answer(200))]
    )
    assert second.actions == (CreateTimer(2, at(1) + timedelta(seconds=30)),)
    (poll,) = steps.step([started(31), timer_fired(2, at(31))]).actions
    assert request_of(poll)["uri"] == "http://api.example/s/1"
    final = steps.step([started(32), completed(3, answer(200, {}, "one"))])
    assert json.loads(final.output or "null") == ["one", ""]
