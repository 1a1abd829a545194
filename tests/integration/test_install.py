"""Installing the package into someone else's app, as a user would: build the wheel, put it in
a new app folder outside this checkout with a requirements.txt Azure's build accepts, install
that into a fresh virtual environment, and run the app with `python -m orchestration host`
against Azurite, end to end (an orchestration over HTTP, the dashboard's files, the doctor).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from orchestration.host.azurite import free_port
from orchestration.host.lifetime import dies_with_this_process
from tests.conftest import Storage, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KEY = "install-test-function-key-0123456789"
APP = """
    import azure.functions as func

    import orchestration as df

    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


    @app.route(route="start/{name}", methods=["POST"])
    @app.durable_client_input(client_name="client")
    async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient):
        instance_id = await client.start_new("cities", None, req.route_params["name"])
        return client.create_check_status_response(req, instance_id)


    @app.orchestration_trigger(context_name="context")
    def cities(context: df.DurableOrchestrationContext):
        greetings = []
        for city in ("Tokyo", "Seattle", context.get_input()):
            greetings.append((yield context.call_activity("greet", city)))
        return greetings


    @app.activity_trigger(input_name="city")
    def greet(city: str) -> str:
        return f"Hello {city}!"
"""


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def call(method: str, url: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=b"" if method == "POST" else None, method=method)
    request.add_header("x-functions-key", KEY)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            kind = response.headers.get("Content-Type", "")
            return response.status, json.loads(body) if "json" in kind else body
    except urllib.error.HTTPError as failure:
        return failure.code, failure.read()


def test_the_wheel_installs_into_a_new_app_and_runs_it(tmp_path: Path, azurite: Storage) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    clean.pop("AzureWebJobsStorage", None)
    # 1. The wheel, with its static files and nothing of the repository's own.
    # Built from a copy of what the wheel is made of, so the checkout gets no build/ folder.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "orchestration", source / "orchestration",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
        source, clean)  # fmt: skip
    (wheel,) = dist.glob("orchestration-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "orchestration/functions/dashboard/static/index.html" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/", "workflows/"))]
    # 2. A user's app folder, outside this checkout, with the wheel beside its code.
    app = tmp_path / "their-app"
    (app / "wheels").mkdir(parents=True)
    shutil.copy(wheel, app / "wheels")
    (app / "function_app.py").write_text(textwrap.dedent(APP))
    extensions = {"durableTask": {"hubName": "InstallTest"}}
    (app / "host.json").write_text(json.dumps({"version": "2.0", "extensions": extensions}))
    values = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": azurite.connection_string,
    }
    (app / "local.settings.json").write_text(json.dumps({"Values": values}))
    (app / "requirements.txt").write_text(
        "azure-functions\n--find-links wheels\norchestration==0.1.0\n"
    )
    # 3. A fresh virtual environment, installed from requirements.txt as Azure's build does.
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, clean)
    python = str(venv / "bin" / "python")
    run([python, "-m", "pip", "install", "-q", "-r", "requirements.txt"], app, clean)
    installed = run([python, "-m", "pip", "list", "--format=json"], app, clean)
    packages = {p["name"].lower() for p in json.loads(installed)}
    assert "orchestration" in packages and "aiohttp" in packages
    assert not packages & {"pytest", "playwright", "mypy", "ruff", "hypothesis"}  # runtime only
    where = run([python, "-c", "import orchestration; print(orchestration.__file__)"], app, clean)
    assert str(venv) in where and str(ROOT) not in where
    # 4. The doctor passes it; the host runs it.
    run([python, "-m", "orchestration", "doctor", "--app-dir", str(app)], app, clean)
    port = free_port()
    env = {**clean, "FUNCTIONS_FUNCTION_KEY": KEY, "FUNCTIONS_MASTER_KEY": KEY + "-master"}
    log_path = tmp_path / "host.log"
    with open(log_path, "wb") as log:
        host = subprocess.Popen(
            [python, "-m", "orchestration", "host", "--app-dir", str(app), "--port", str(port)],
            cwd=app,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=dies_with_this_process(),
        )
    try:
        wait_until(lambda: b"Host started" in log_path.read_bytes() or host.poll() is not None,
                   timeout=60, message="the host to start")  # fmt: skip
        assert host.poll() is None, log_path.read_text()
        base = f"http://127.0.0.1:{port}/api"
        status, started = call("POST", f"{base}/start/Lima")
        assert status == 202, started
        deadline = time.monotonic() + 60
        while (answer := call("GET", started["statusQueryGetUri"]))[1][
            "runtimeStatus"
        ] != "Completed":
            assert time.monotonic() < deadline, answer
            time.sleep(0.2)
        assert answer[1]["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello Lima!"]
        page = call("GET", f"{base}/durabletask/dashboard/")
        assert page[0] == 200 and b"<title>" in page[1]
    finally:
        host.terminate()
        host.wait(30)
