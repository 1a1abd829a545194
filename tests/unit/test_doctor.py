"""`python -m orchestration doctor` on small apps: one that passes, and one for each kind of
problem it must name (run as a subprocess each, as a user's CI runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from orchestration.doctor import examine
from orchestration.doctor.determinism import check_source
from orchestration.host import azurite
from orchestration.host.azurite import AzuriteError, AzuriteMissing, free_port, how_to_get_azurite
from orchestration.host.runner import HostStartupError, ensure_azurite

ROOT = Path(__file__).resolve().parents[2]
REAL_ACCOUNT = (
    "DefaultEndpointsProtocol=https;AccountName=someaccount;AccountKey="
    "c29tZSBrZXkgdGhhdCBpcyBub3QgcmVhbCBidXQgYmFzZTY0IGVuY29kZWQgYW55d2F5IQ==;"
    "EndpointSuffix=core.windows.net"
)
GOOD_APP = """
    import orchestration as df

    app = df.DFApp()


    @app.orchestration_trigger(context_name="context")
    def hello(context):
        name = yield context.call_activity("greet", context.get_input())
        return name


    @app.activity_trigger(input_name="name")
    def greet(name):
        return f"Hello {name}"
"""
HOST_JSON = {
    "version": "2.0",
    "extensionBundle": {
        "id": "Microsoft.Azure.Functions.ExtensionBundle",
        "version": "[4.*, 5.0.0)",
    },
    "extensions": {"durableTask": {"hubName": "DoctorHub"}},
}


def make_app(
    folder: Path,
    code: str = GOOD_APP,
    host: dict[str, Any] | None = None,
    settings: dict[str, str] | None = None,
    requirements: str = "azure-functions\norchestration @ git+https://example.com/orchestration.git\n",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "function_app.py").write_text(textwrap.dedent(code))
    (folder / "host.json").write_text(json.dumps(host if host is not None else HOST_JSON))
    values = {"FUNCTIONS_WORKER_RUNTIME": "python", "AzureWebJobsStorage": REAL_ACCOUNT}
    values.update(settings or {})
    (folder / "local.settings.json").write_text(json.dumps({"Values": values}))
    (folder / "requirements.txt").write_text(requirements)
    return folder


def clean_environment() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("AzureWebJobs", "ORCHESTRATION_"))
    }


def doctor(app: Path) -> tuple[int, dict[str, Any]]:
    """The doctor's verdict and JSON report, in this process (fast; the CLI is tested below)."""
    report = examine(app, clean_environment())
    document = {
        "functions": report.functions,
        "orchestrators": report.orchestrators,
        "activities": report.activities,
        "findings": [finding.to_json() for finding in report.findings],
    }
    return (1 if report.errors else 0), document


def doctor_cli(app: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`python -m orchestration doctor` as a user's CI runs it."""
    return subprocess.run(
        [sys.executable, "-m", "orchestration", "doctor", "--app-dir", str(app), *options],
        capture_output=True,
        text=True,
        env={**clean_environment(), "PYTHONPATH": str(ROOT)},
        cwd=app,
        timeout=120,
    )


def problems(report: dict[str, Any], level: str) -> list[str]:
    return [
        f"{f['where']}: {f['problem']} | {f['fix']}"
        for f in report["findings"]
        if f["level"] == level
    ]


def test_the_command_reports_in_json_and_exits_by_what_it_found(tmp_path: Path) -> None:
    sound = doctor_cli(make_app(tmp_path / "sound"), "--json")
    assert sound.returncode == 0, sound.stdout + sound.stderr
    assert json.loads(sound.stdout)["errors"] == 0
    broken = make_app(tmp_path / "broken", settings={"FUNCTIONS_WORKER_RUNTIME": "node"})
    told = doctor_cli(broken)
    assert (
        told.returncode == 1
        and "ERROR" in told.stdout
        and "FUNCTIONS_WORKER_RUNTIME" in told.stdout
    )


def test_a_sound_app_passes(tmp_path: Path) -> None:
    code, report = doctor(make_app(tmp_path / "app"))
    assert code == 0, report
    assert problems(report, "error") == [] and problems(report, "warning") == []
    assert report["orchestrators"] == ["hello"]
    assert report["activities"] == ["greet"]
    assert "durable_orchestrator_worker" in report["functions"]


def test_a_durable_functions_import_is_named_with_the_one_line_fix(tmp_path: Path) -> None:
    app = make_app(
        tmp_path / "app",
        GOOD_APP.replace("import orchestration as df", "import azure.durable_functions as df"),
    )
    code, report = doctor(app)
    assert code == 1
    errors = "\n".join(problems(report, "error"))
    assert "function_app.py:2" in errors and "import orchestration as df" in errors


def test_an_unsupported_binding_names_its_function(tmp_path: Path) -> None:
    code_text = (
        GOOD_APP
        + """

    import azure.functions as func


    @app.service_bus_queue_trigger(arg_name="msg", queue_name="orders", connection="Bus")
    def on_order(msg: func.ServiceBusMessage) -> None:
        pass
    """
    )
    code, report = doctor(make_app(tmp_path / "app", code_text))
    assert code == 1
    errors = problems(report, "error")
    assert any("function 'on_order'" in e and "serviceBusTrigger" in e for e in errors), errors


def test_host_json_settings_we_ignore_or_cannot_honour(tmp_path: Path) -> None:
    host = json.loads(json.dumps(HOST_JSON))
    host["extensions"]["durableTask"].update(
        {
            "storageProvider": {"type": "Netherite", "partitionCount": 12},
            "maxConcurrentActivityFunctions": 10,
            "extendedSessionsEnabled": True,
            "hubname_typo": "x",
        }
    )
    code, report = doctor(make_app(tmp_path / "app", host=host))
    assert code == 1
    errors, warnings = problems(report, "error"), "\n".join(problems(report, "warning"))
    assert any("Netherite" in e and "only Azure Storage" in e for e in errors), errors
    assert "maxConcurrentActivityFunctions: ignored" in warnings
    assert "extendedSessionsEnabled: ignored" in warnings
    assert "storageProvider.partitionCount: ignored" in warnings
    assert "hubname_typo: not a setting" in warnings


def test_orchestrator_code_that_replays_differently_is_flagged(tmp_path: Path) -> None:
    code_text = """
    import random
    import time
    import uuid
    from datetime import datetime as dt

    import orchestration as df

    app = df.DFApp()


    @app.orchestration_trigger(context_name="context")
    def careless(context):
        started = dt.utcnow()
        key = uuid.uuid4()
        if random.random() > 0.5:
            time.sleep(1)
        with open("/tmp/x") as f:
            f.read()
        safe = context.current_utc_datetime
        yield context.call_activity("greet", str(key))
        return [str(started), str(safe)]


    @app.activity_trigger(input_name="name")
    def greet(name):
        return uuid.uuid4().hex  # activities may do anything
    """
    code, report = doctor(make_app(tmp_path / "app", code_text))
    assert code == 0  # warnings: it runs, but replays differently
    warnings = problems(report, "warning")
    assert len(warnings) == 5, warnings
    text = "\n".join(warnings)
    assert "function_app.py:14: orchestrator 'careless' calls dt.utcnow()" in text
    assert "context.current_utc_datetime" in text
    assert "function_app.py:15" in text and "context.new_uuid()" in text
    assert "random.random()" in text and "time.sleep()" in text and "create_timer" in text
    assert "open()" in text and "activity" in text
    assert ":27:" not in text  # the activity's uuid4 is fine


def test_settings_problems(tmp_path: Path) -> None:
    code, report = doctor(
        make_app(tmp_path / "node", settings={"FUNCTIONS_WORKER_RUNTIME": "node"})
    )
    assert code == 1 and any("FUNCTIONS_WORKER_RUNTIME" in e for e in problems(report, "error"))
    app = make_app(tmp_path / "nostorage")
    (app / "local.settings.json").write_text(json.dumps({"Values": {}}))
    code, report = doctor(app)
    assert code == 1 and any(
        "'AzureWebJobsStorage' is not set" in e for e in problems(report, "error")
    )


def test_requirements_for_azures_build(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app", requirements="azure-functions\nazure-functions-durable\n")
    code, report = doctor(app)
    assert code == 1
    assert any("does not list this package" in e for e in problems(report, "error"))
    assert any("azure-functions-durable" in w for w in problems(report, "warning"))
    wheel = make_app(tmp_path / "wheel", requirements="--find-links wheels\norchestration==0.1.0\n")
    code, report = doctor(wheel)
    assert code == 1 and any("holds no orchestration wheel" in e for e in problems(report, "error"))
    (wheel / "wheels").mkdir()
    (wheel / "wheels" / "orchestration-0.1.0-py3-none-any.whl").write_bytes(b"")
    assert doctor(wheel)[0] == 0
    # PyPI has an unrelated package of this name: an unpinned line is refused.
    bare = make_app(tmp_path / "bare", requirements="azure-functions\norchestration\n")
    code, report = doctor(bare)
    assert code == 1 and any("unrelated package" in e for e in problems(report, "error"))
    other = make_app(tmp_path / "other", requirements="orchestration-utils==1.0\n")
    assert any("does not list" in e for e in problems(doctor(other)[1], "error"))


def test_a_folder_without_an_app(tmp_path: Path) -> None:
    code, report = doctor(tmp_path)
    assert code == 1 and "no function_app.py" in problems(report, "error")[0]


def test_the_determinism_rules_resolve_import_aliases() -> None:
    module = "import datetime as d\nfrom time import sleep\nimport secrets\n"
    source = (
        "def wf(ctx):\n    d.datetime.now()\n    sleep(2)\n    secrets.token_hex()\n"
        "    ctx.new_uuid()\n"
    )
    found = check_source("wf", source, module, "app.py", 10)
    assert [f.where for f in found] == ["app.py:11", "app.py:12", "app.py:13"]


def test_the_host_says_how_to_get_azurite_when_none_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = [free_port() for _ in range(3)]
    connection = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"BlobEndpoint=http://127.0.0.1:{ports[0]}/devstoreaccount1;"
        f"QueueEndpoint=http://127.0.0.1:{ports[1]}/devstoreaccount1;"
        f"TableEndpoint=http://127.0.0.1:{ports[2]}/devstoreaccount1;"
    )
    monkeypatch.setenv("AzureWebJobsStorage", connection)

    def missing(*_: Path) -> Path:
        raise AzuriteMissing(how_to_get_azurite(tmp_path))

    monkeypatch.setattr(azurite, "find_azurite", missing)
    with pytest.raises(HostStartupError) as refused:
        ensure_azurite(tmp_path)
    message = str(refused.value)
    assert "npm install azurite@3.35.0" in message
    assert "npm install -g azurite@3.35.0" in message
    assert f"python -m orchestration azurite --install --app-dir {tmp_path}" in message
    assert "--install-azurite" in message and "make setup" not in message
    # A real account is never touched.
    monkeypatch.setenv("AzureWebJobsStorage", REAL_ACCOUNT)
    assert ensure_azurite(tmp_path) is None


def test_install_azurite_installs_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = [free_port() for _ in range(3)]
    monkeypatch.setenv(
        "AzureWebJobsStorage",
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        + "".join(
            f"{kind}Endpoint=http://127.0.0.1:{port}/devstoreaccount1;"
            for kind, port in zip(("Blob", "Queue", "Table"), ports, strict=True)
        ),
    )
    asked: list[Path] = []

    def missing(*_: Path) -> Path:
        raise AzuriteMissing("none here")

    def install(app_dir: Path) -> Path:
        asked.append(app_dir)
        raise AzuriteError("npm is not on PATH")

    monkeypatch.setattr(azurite, "find_azurite", missing)
    monkeypatch.setattr(azurite, "install_azurite", install)
    with pytest.raises(HostStartupError, match="npm is not on PATH"):
        ensure_azurite(tmp_path, install=True)
    assert asked == [tmp_path]


def test_what_the_doctor_cannot_read_fails_it_never_passes_it(tmp_path: Path) -> None:
    exits = make_app(tmp_path / "exits", GOOD_APP + "\n    import sys\n    sys.exit(0)\n")
    code, report = doctor(exits)
    assert code == 1 and any("SystemExit" in e for e in problems(report, "error"))
    for name, host in (
        ("extensions-string", {"version": "2.0", "extensions": "none"}),
        ("durable-list", {"version": "2.0", "extensions": {"durableTask": []}}),
        (
            "provider-string",
            {"version": "2.0", "extensions": {"durableTask": {"storageProvider": "x"}}},
        ),
    ):
        code, report = doctor(make_app(tmp_path / name, host=host))
        assert code == 1 and any("must be a JSON object" in e for e in problems(report, "error")), (
            name
        )
    listed = make_app(tmp_path / "settings-list")
    (listed / "local.settings.json").write_text("[]")
    code, report = doctor(listed)
    assert code == 1 and any("must be a JSON object" in e for e in problems(report, "error"))
    bad_port = make_app(
        tmp_path / "bad-port",
        settings={"AzureWebJobsStorage": "BlobEndpoint=http://127.0.0.1:99999/a;"
                  "QueueEndpoint=http://127.0.0.1:99998/a;TableEndpoint=http://127.0.0.1:99997/a;"},
    )  # fmt: skip
    code, report = doctor(bad_port)
    assert code == 1 and any(
        "not a usable connection string" in e for e in problems(report, "error")
    )


def test_identity_based_storage_and_storage_typos(tmp_path: Path) -> None:
    host = json.loads(json.dumps(HOST_JSON))
    host["extensions"]["durableTask"]["storageProvider"] = {
        "connectionName": "Storage",
        "connectionStringNam": "X",
        "FetchLargeMessagesAutomatically": True,
    }
    code, report = doctor(make_app(tmp_path / "app", host=host))
    assert code == 1
    assert any("identity-based" in e for e in problems(report, "error"))
    warnings = "\n".join(problems(report, "warning"))
    assert "connectionStringNam: not a storage provider setting" in warnings
    assert "FetchLargeMessagesAutomatically: ignored" in warnings


def test_a_local_named_like_a_module_is_not_flagged_and_strict_fails_warnings(
    tmp_path: Path,
) -> None:
    code_text = (
        GOOD_APP
        + """

    @app.orchestration_trigger(context_name="context")
    def careful(context):
        secrets = yield context.call_activity("greet", "vault")
        requests = []
        requests.append(secrets)
        return requests
    """
    )
    code, report = doctor(make_app(tmp_path / "app", code_text))
    assert code == 0 and problems(report, "warning") == []
    unsafe = make_app(tmp_path / "unsafe", GOOD_APP.replace(
        "name = yield", "import time\n        time.sleep(1)\n        name = yield"))  # fmt: skip
    assert doctor(unsafe)[0] == 0
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AzureWebJobs", "ORCHESTRATION_"))
    }
    strict = subprocess.run(
        [sys.executable, "-m", "orchestration", "doctor", "--app-dir", str(unsafe), "--strict"],
        capture_output=True, text=True, env={**env, "PYTHONPATH": str(ROOT)}, timeout=120,
    )  # fmt: skip
    assert strict.returncode == 1 and "time.sleep()" in strict.stdout


def test_a_thread_the_app_starts_does_not_keep_the_doctor_running(tmp_path: Path) -> None:
    code_text = (
        GOOD_APP
        + "\n    import threading, time\n"
        + "    threading.Thread(target=time.sleep, args=(600,)).start()\n"
    )
    started = time.monotonic()
    finished = doctor_cli(make_app(tmp_path / "app", code_text))
    assert finished.returncode == 0 and time.monotonic() - started < 60
