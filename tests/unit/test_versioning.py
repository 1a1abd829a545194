"""Orchestration versions: DF's comparison rules, the match and failure strategies, host.json
settings, and the version sub-orchestrations get."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestration.core import DurableOrchestrationContext, OrchestrationSession, RetryOptions
from orchestration.core.actions import StartSubOrchestration
from orchestration.core.history import ExecutionStarted, SubOrchestrationInstanceCreated
from orchestration.core.versioning import (
    VersionFailureStrategy,
    VersioningPolicy,
    VersionMatchStrategy,
    compare_versions,
)
from orchestration.functions.settings import EngineSettings
from tests.unit.factories import at, started

Context = DurableOrchestrationContext


@pytest.mark.parametrize(
    ("left", "right", "order"),
    [
        (None, None, 0),
        ("", None, 0),
        ("  ", "", 0),
        (None, "1.0", -1),
        ("1.0", "", 1),
        ("1.0", "1.0", 0),
        ("1.0", "2.0", -1),
        ("1.10", "1.9", 1),  # by components, not as text
        ("1.0", "1.0.0", -1),  # System.Version: an absent build is older
        ("2.0.0.1", "2.0.0", 1),
        ("10", "9", -1),  # one number is not a System.Version: compared as text
        ("v1.0-release", "V1.0-RELEASE", 0),  # text comparison ignores case
        ("2025-01-01", "2025-02-01", -1),
        ("1.0", "v2", -1),  # one side is not a System.Version: text
    ],
)
def test_versions_compare_as_durable_functions_documents(
    left: str | None, right: str | None, order: int
) -> None:
    assert compare_versions(left, right) == order
    assert compare_versions(right, left) == -order


def test_current_or_older_runs_its_version_and_older_ones() -> None:
    policy = VersioningPolicy("2.0")
    assert policy.match is VersionMatchStrategy.CURRENT_OR_OLDER
    assert policy.failure is VersionFailureStrategy.REJECT
    assert policy.can_run("2.0") and policy.can_run("1.5") and policy.can_run(None)
    assert not policy.can_run("2.1")


def test_strict_runs_only_its_own_version() -> None:
    policy = VersioningPolicy("2.0", VersionMatchStrategy.STRICT)
    assert policy.can_run("2.0")
    assert not policy.can_run("1.0") and not policy.can_run(None)


def test_none_and_an_unset_default_version_run_everything() -> None:
    assert VersioningPolicy("1.0", VersionMatchStrategy.NONE).can_run("9.0")
    assert VersioningPolicy(None, VersionMatchStrategy.STRICT).can_run("9.0")


def test_the_mismatch_message_names_both_versions() -> None:
    message = VersioningPolicy("1.0").mismatch("2.0")
    assert "'2.0'" in message and "'1.0'" in message and "CurrentOrOlder" in message


def _settings(tmp_path: Path, durable: dict[str, Any]) -> EngineSettings:
    (tmp_path / "host.json").write_text(
        json.dumps({"version": "2.0", "extensions": {"durableTask": durable}})
    )
    return EngineSettings.from_host_json(tmp_path)


def test_host_json_names_the_settings_as_durable_functions_does(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        {
            "defaultVersion": "2.1",
            "versionMatchStrategy": "Strict",
            "versionFailureStrategy": "fail",
        },
    )
    assert settings.versioning == VersioningPolicy(
        "2.1", VersionMatchStrategy.STRICT, VersionFailureStrategy.FAIL
    )
    assert _settings(tmp_path, {"defaultVersion": None}).versioning == VersioningPolicy()


@pytest.mark.parametrize(
    ("durable", "named"),
    [
        ({"versionMatchStrategy": "Newest"}, "versionMatchStrategy must be one of None, Strict"),
        ({"versionFailureStrategy": "Retry"}, "versionFailureStrategy must be one of Reject"),
        ({"defaultVersion": 2}, "defaultVersion must be a string"),
    ],
)
def test_a_wrong_setting_stops_start_up_with_what_is_allowed(
    tmp_path: Path, durable: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        _settings(tmp_path, durable)


def _children(code: Any, default_version: str | None) -> list[SubOrchestrationInstanceCreated]:
    session = OrchestrationSession({"main": code}, "p", default_version=default_version)
    start = ExecutionStarted(-1, at(0), name="main", instance_id="p", version="1.0")
    result = session.step([started(0), start])
    return [e for e in result.new_events if isinstance(e, SubOrchestrationInstanceCreated)]


def test_a_sub_orchestration_gets_the_given_version_else_the_workers_default() -> None:
    def parent(ctx: Context) -> Any:
        yield ctx.task_all(
            [
                ctx.call_sub_orchestrator("child", 1, "c1", "3.0"),
                ctx.call_sub_orchestrator("child", 2, "c2"),
                ctx.call_sub_orchestrator_with_retry(
                    "child", RetryOptions(1000, 2), 3, "c3", version="4.0"
                ),
            ]
        )

    created = _children(parent, "2.0")
    assert [(c.instance_id, c.version) for c in created] == [
        ("c1", "3.0"),
        ("c2", "2.0"),  # DF: sub-orchestrations take the worker's defaultVersion
        ("c3", "4.0"),
    ]
    assert [c.version for c in _children(parent, None)] == ["3.0", None, "4.0"]


def test_the_version_reaches_the_start_action_and_the_context() -> None:
    seen: list[str | None] = []

    def parent(ctx: Context) -> Any:
        seen.append(ctx.version)
        yield ctx.call_sub_orchestrator("child", None, "c", version="5.0")

    session = OrchestrationSession({"main": parent}, "p")
    start = ExecutionStarted(-1, at(0), name="main", instance_id="p", version="1.0")
    result = session.step([started(0), start])
    [action] = [a for a in result.actions if isinstance(a, StartSubOrchestration)]
    assert action.version == "5.0"
    assert seen == ["1.0"]
