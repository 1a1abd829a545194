"""The CLI (`python -m orchestration ...`) against Azurite, straight through storage.

A local host runs tests/apps/management_app on its own hub, so instances the CLI starts make
progress; the CLI itself talks to storage only. Most commands run in-process through `main`
(fast); a few run as real processes to check exit codes, one-line errors and `--wait` output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from orchestration.cli import main
from tests.conftest import APPS, ROOT, HostProcess, Storage, launch_host, unique, wait_until


@pytest.fixture(scope="module")
def hub_name() -> str:
    return "Cli" + unique("h").replace("-", "")[:16]


@pytest.fixture(scope="module")
def host(
    azurite: Storage, tmp_path_factory: pytest.TempPathFactory, hub_name: str
) -> Iterator[HostProcess]:
    log = tmp_path_factory.mktemp("cli") / "host.log"
    process = launch_host(
        APPS / "management_app", azurite.connection_string, log, {"DURABLE_TEST_HUB": hub_name}
    )
    yield process
    process.stop()


class Cli:
    """Runs CLI commands against the test hub; an empty app dir, so no settings leak in."""

    def __init__(self, storage: Storage, hub: str, app_dir: Path, capsys: Any) -> None:
        self.where = [
            "--connection",
            storage.connection_string,
            "--hub",
            hub,
            "--app-dir",
            str(app_dir),
        ]
        self.capsys = capsys

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        command, rest = argv[0], list(argv[1:])
        if command in ("hub", "entity"):
            rest = [rest[0], *self.where, *rest[1:]]
            code = main([command, *rest])
        else:
            code = main([command, *self.where, *rest])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def json(self, *argv: str) -> Any:
        code, out, err = self(*argv, "--json")
        assert code == 0, err
        return json.loads(out)

    def wait_for(self, instance_id: str, *statuses: str) -> dict[str, Any]:
        def reached() -> Any:
            status = self.json("status", instance_id)
            return status if status["runtimeStatus"] in statuses else None

        result: dict[str, Any] = wait_until(reached, 60, 0.2, f"{instance_id} in {statuses}")
        return result


@pytest.fixture
def cli(azurite: Storage, hub_name: str, host: HostProcess, tmp_path: Path, capsys: Any) -> Cli:
    return Cli(azurite, hub_name, tmp_path, capsys)


def run_process(
    *argv: str, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    child_env = {k: v for k, v in os.environ.items() if k != "AzureWebJobsStorage"}
    child_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "orchestration", *argv],
        cwd=cwd,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_start_wait_shows_progress_and_the_output(
    azurite: Storage, hub_name: str, host: HostProcess, tmp_path: Path
) -> None:
    result = run_process(
        "start",
        "echo",
        "--input",
        '{"city": "Oslo"}',
        "--wait",
        "--timeout",
        "60",
        "--connection",
        azurite.connection_string,
        "--hub",
        hub_name,
        "--app-dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Started echo as ")
    assert "Completed" in out and "history events" in out
    assert 'Output:    {"city": "Oslo"}' in out
    progress = [line for line in out.splitlines() if "history events" in line]
    assert len(progress) >= 2


def test_start_with_an_id_and_input_file_then_status(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "input.json"
    source.write_text('[1, 2, "three"]')
    instance_id = unique("cli-start")
    code, out, _ = cli("start", "echo", "--id", instance_id, "--input", f"@{source}")
    assert code == 0 and out.strip() == f"Started echo as {instance_id}"
    status = cli.wait_for(instance_id, "Completed")
    assert status["output"] == [1, 2, "three"] and status["input"] == [1, 2, "three"]
    code, out, _ = cli("status", instance_id)
    assert code == 0
    assert f"Instance:  {instance_id}" in out and "Status:    Completed" in out
    started = cli.json("start", "wait_event")
    assert started["name"] == "wait_event" and started["instanceId"]
    code, _, err = cli("start", "wait_event", "--id", started["instanceId"])
    assert code == 1 and "already exists" in err and len(err.strip().splitlines()) == 1


def test_status_history_is_a_timeline_with_durations(cli: Cli) -> None:
    instance_id = cli.json("start", "echo", "--input", "5")["instanceId"]
    cli.wait_for(instance_id, "Completed")
    code, out, _ = cli("status", instance_id, "--history")
    assert code == 0
    assert "AT" in out and "EVENT" in out and "TOOK" in out
    lines = out.splitlines()
    scheduled = next(line for line in lines if "TaskScheduled" in line)
    completed = next(line for line in lines if "TaskCompleted" in line)
    assert "identity" in scheduled and "identity" in completed
    assert completed.split()[-1].endswith(("ms", "s"))
    assert any("ExecutionCompleted" in line and "Completed" in line for line in lines)
    history = cli.json("status", instance_id, "--history")["historyEvents"]
    assert history[-1]["EventType"] == "ExecutionCompleted"


def test_list_filters_by_status_prefix_and_time(cli: Cli) -> None:
    prefix = unique("cli-list")
    for i in range(3):
        cli("start", "wait_event", "--id", f"{prefix}-{i}")
    cli("start", "echo", "--id", f"{prefix}-done", "--input", "1")
    cli.wait_for(f"{prefix}-done", "Completed")
    for i in range(3):
        cli.wait_for(f"{prefix}-{i}", "Running")
    code, out, _ = cli("list", "--prefix", prefix)
    assert code == 0
    assert out.splitlines()[0].split() == ["INSTANCE", "ID", "NAME", "STATUS", "CREATED", "UPDATED"]
    assert "4 instance(s)" in out
    running = cli.json("list", "--prefix", prefix, "--status", "Running")
    assert sorted(s["instanceId"] for s in running) == [f"{prefix}-{i}" for i in range(3)]
    both = cli.json("list", "--prefix", prefix, "--status", "running,completed", "--since", "10m")
    assert len(both) == 4
    assert cli.json("list", "--prefix", prefix, "--until", "2000-01-01") == []
    limited = cli.json("list", "--prefix", prefix, "--limit", "2")
    assert len(limited) == 2
    code, _, err = cli("list", "--status", "Sleeping")
    assert code == 1 and "Sleeping" in err
    code, _, err = cli("list", "--since", "last tuesday")
    assert code == 1 and "--since" in err


def test_raise_event_completes_a_waiting_instance(cli: Cli, tmp_path: Path) -> None:
    instance_id = cli.json("start", "wait_event")["instanceId"]
    cli.wait_for(instance_id, "Running")
    code, out, _ = cli("raise-event", instance_id, "Go", "--data", '{"ok": true}')
    assert code == 0 and out.strip() == f"Sent Go to {instance_id}"
    assert cli.wait_for(instance_id, "Completed")["output"] == {"got": {"ok": True}}
    code, _, err = cli("raise-event", instance_id, "Go")
    assert code == 1 and "Completed" in err
    code, _, err = cli("raise-event", instance_id, "Go", "--data", "{nope")
    assert code == 1 and "--data is not valid JSON" in err


def test_suspend_resume_and_terminate(cli: Cli) -> None:
    instance_id = cli.json("start", "wait_event")["instanceId"]
    cli.wait_for(instance_id, "Running")
    assert cli("suspend", instance_id, "--reason", "pause")[0] == 0
    cli.wait_for(instance_id, "Suspended")
    assert cli("resume", instance_id)[0] == 0
    cli.wait_for(instance_id, "Running")
    code, out, _ = cli("terminate", instance_id, "--reason", "enough")
    assert code == 0 and out.strip() == f"Terminating {instance_id}"
    assert cli.wait_for(instance_id, "Terminated")["output"] == "enough"
    code, _, err = cli("terminate", instance_id)
    assert code == 1 and "already Terminated" in err


def test_rewind_and_restart(cli: Cli) -> None:
    instance_id = cli.json("start", "fail_once")["instanceId"]
    cli.wait_for(instance_id, "Failed")
    code, out, _ = cli("status", instance_id)
    assert "first attempt fails" in out
    assert cli("rewind", instance_id, "--reason", "try again")[0] == 0
    assert cli.wait_for(instance_id, "Completed")["output"] == "ok after 2"
    code, _, err = cli("rewind", instance_id)
    assert code == 1 and "Only a Failed instance" in err
    restarted = cli.json("restart", instance_id)
    assert restarted["restartedFrom"] == instance_id
    assert cli.wait_for(restarted["instanceId"], "Completed", "Failed")
    same = cli.json("restart", instance_id, "--same-id")
    assert same["instanceId"] == instance_id


def test_purge_by_id_and_by_filter(cli: Cli) -> None:
    running = cli.json("start", "wait_event")["instanceId"]
    cli.wait_for(running, "Running")
    code, _, err = cli("purge", running)
    assert code == 1 and "terminate it first" in err
    done = [cli.json("start", "echo", "--input", str(i))["instanceId"] for i in range(2)]
    for instance_id in done:
        cli.wait_for(instance_id, "Completed")
    assert cli.json("purge", done[0]) == {"instancesDeleted": 1}
    code, _, err = cli("status", done[0])
    assert code == 1 and "no instance" in err
    code, _, err = cli("purge")
    assert code == 1 and "needs instance ids or a filter" in err
    code, _, err = cli("purge", "--status", "Running")
    assert code == 1 and "only finished instances" in err
    purged = cli.json("purge", "--since", "2m", "--status", "Completed")
    assert purged["instancesDeleted"] >= 1
    assert cli("status", done[1])[0] == 1
    assert cli.json("purge", running, "--force") == {"instancesDeleted": 1}


def test_entity_signal_get_and_list(cli: Cli) -> None:
    key = unique("k")
    code, out, err = cli("entity", "signal", "counter", key, "add", "--input", "2")
    assert (code, err) == (0, "") and f"Signalled add to @counter@{key}" in out
    cli("entity", "signal", "counter", key, "add", "--input", "3")

    def settled() -> Any:
        code, out, _ = cli("entity", "get", "counter", key, "--json")
        return json.loads(out) if code == 0 and json.loads(out)["state"] == 5 else None

    assert wait_until(settled, 30, 0.1, "the counter to reach 5") == {
        "id": f"@counter@{key}",
        "state": 5,
    }
    code, out, _ = cli("entity", "list", "counter", "--state")
    assert code == 0 and f"@counter@{key}" in out and "5" in out
    listed = cli.json("entity", "list", "counter")
    assert any(e["id"] == f"@counter@{key}" for e in listed)
    code, _, err = cli("entity", "get", "counter", unique("none"))
    assert code == 1 and "no entity" in err
    code, _, err = cli("entity", "get", "a@b", "k")
    assert code != 0 and err.startswith("error:")


def test_hub_info_shows_queues_and_instances_by_status(cli: Cli, hub_name: str) -> None:
    instance_id = cli.json("start", "wait_event")["instanceId"]
    cli.wait_for(instance_id, "Running")
    code, out, _ = cli("hub", "info")
    assert code == 0
    assert f"Task hub {hub_name}" in out
    assert f"{hub_name.lower()}-control" in out and f"{hub_name.lower()}-workitems" in out
    assert "Running" in out and "instance(s)" in out
    document = cli.json("hub", "info")
    assert document["hub"] == hub_name
    assert document["instances"]["Running"] >= 1
    assert document["totalInstances"] == sum(document["instances"].values())
    assert set(document["queues"]) >= {f"{hub_name.lower()}-control"}


def test_errors_are_one_line_with_a_non_zero_exit(
    azurite: Storage, hub_name: str, tmp_path: Path
) -> None:
    where = [
        "--connection",
        azurite.connection_string,
        "--hub",
        hub_name,
        "--app-dir",
        str(tmp_path),
    ]
    cases = [
        (["status", "no-such-instance", *where], "no instance with id 'no-such-instance'"),
        (["start", "echo", "--input", "{bad", *where], "--input is not valid JSON"),
        (["start", "echo", "--input", "1e99999", *where], "out of range for JSON"),
        (["start", "echo", "--input", '"\\ud800"', *where], "lone surrogate"),
        (["start", "echo", "--input", "@/no/such/file", *where], "cannot read --input"),
        (["status", "bad\x01id", *where], "control characters"),
        (["list", "--app-dir", str(tmp_path)], "no storage connection"),
        (
            [
                "list",
                "--connection",
                azurite.connection_string,
                "--hub",
                "x",
                "--app-dir",
                str(tmp_path),
            ],
            "Invalid task hub name",
        ),
        (
            [
                "hub",
                "info",
                "--connection",
                azurite.connection_string,
                "--hub",
                "NoSuchHub123",
                "--app-dir",
                str(tmp_path),
            ],
            "does not exist",
        ),
        (
            [
                "list",
                "--connection",
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
                "KBHBeksoGMGw==;TableEndpoint=http://127.0.0.1:9/devstoreaccount1;",
                "--hub",
                hub_name,
                "--app-dir",
                str(tmp_path),
            ],
            "cannot reach storage",
        ),
    ]
    # Each case is its own process; they share nothing, so they run side by side (each is
    # mostly interpreter start and imports).
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda case: run_process(*case[0]), cases))
    for (argv, expected), result in zip(cases, results, strict=True):
        assert result.returncode == 1, (argv, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, result.stderr)
        assert expected in lines[0], (argv, lines[0])
        assert result.stdout == ""


def test_settings_come_from_the_app_dir(
    azurite: Storage, hub_name: str, host: HostProcess, tmp_path: Path
) -> None:
    (tmp_path / "host.json").write_text(
        json.dumps({"version": "2.0", "extensions": {"durableTask": {"hubName": "%MY_HUB%"}}})
    )
    (tmp_path / "local.settings.json").write_text(
        json.dumps(
            {"Values": {"AzureWebJobsStorage": azurite.connection_string, "MY_HUB": hub_name}}
        )
    )
    started = run_process("start", "echo", "--input", "9", "--wait", "--json", cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    status = json.loads(started.stdout)
    assert status["output"] == 9 and status["runtimeStatus"] == "Completed"
    listed = run_process("list", "--app-dir", str(tmp_path), "--json")
    assert status["instanceId"] in [s["instanceId"] for s in json.loads(listed.stdout)]
