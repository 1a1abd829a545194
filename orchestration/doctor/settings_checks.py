"""The doctor's reading of an app's settings: local.settings.json, host.json (Durable
Functions' `extensions.durableTask` keys we read, those we ignore and why), the storage
connection, and requirements.txt."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, MutableMapping
from importlib import metadata
from pathlib import Path
from typing import Any

from orchestration.doctor.findings import Finding, Level
from orchestration.functions.settings import EngineSettings
from orchestration.host.azurite import AzuriteMissing, find_azurite, how_to_get_azurite
from orchestration.host.azurite import is_listening as listening
from orchestration.host.settings import HostConfigError, HostJson, load_local_settings
from orchestration.host.storage import StorageConfigError, loopback_ports

HOST_JSON = "host.json"
# extensions.durableTask keys the engine reads (README "Engine settings").
READ = {
    "hubName", "storageProvider", "defaultVersion", "versionMatchStrategy",
    "versionFailureStrategy", "managementAuthLevel", "maxRequestBytes",
    # ours
    "localActivities", "localActivityMaxBatch", "directResults", "repairAfter",
    "timerSweepSchedule", "payloadThresholdChars", "versionRejectDelay", "dashboard",
}  # fmt: skip
_QUEUES = (
    "the host's extensions.queues settings (batchSize, newBatchThreshold) bound how much "
    "runs at once"
)
_LAYOUT = (
    "our task hub keeps one control queue and its own tables, so DF's partitioning and "
    "tracking-store options do not apply"
)
# Durable Functions' keys we do not apply, and why.
IGNORED: dict[str, str] = {
    "maxConcurrentActivityFunctions": f"not applied yet: {_QUEUES}",
    "maxConcurrentOrchestratorFunctions": f"not applied yet: {_QUEUES}",
    "maxConcurrentEntityFunctions": f"not applied yet: {_QUEUES}",
    "extendedSessionsEnabled": "not needed: orchestrations stay cached in memory between steps",
    "extendedSessionIdleTimeoutInSeconds": "not needed: orchestrations stay cached in memory",
    "tracing": "DF's tracing goes through its extension; our logs carry instance id and step",
    "notifications": "Event Grid lifecycle notifications are not supported",
    "httpSettings": "our check-status answers use a 1 s Retry-After",
    "useAppLease": "not needed: no partition leases",
    "useGracefulShutdown": "the host always drains in-flight work for --grace seconds",
    "localRpcEndpointEnabled": "there is no .NET extension to talk to",
    "maxEntityOperationBatchSize": "entities apply what their batch holds",
    "storeInputsInOrchestrationHistory": "inputs are always kept in history",
    "overridableExistingInstanceStates": "a start with a running instance's id is refused (409)",
    "appLeaseOptions": "not needed: no app lease",
    "maxOrchestrationActions": "not enforced: the step limit is host.json functionTimeout",
    "entityMessageReorderWindowInMinutes": "entity messages are ordered by the engine itself",
}
STORAGE_READ = {"connectionstringname", "type"}
STORAGE_IGNORED = {
    "partitioncount", "controlqueuebatchsize", "controlqueuebufferthreshold",
    "controlqueuevisibilitytimeout", "workitemqueuevisibilitytimeout", "maxqueuepollinginterval",
    "trackingstoreconnectionstringname", "trackingstorenameprefix", "uselegacypartitionmanagement",
    "usetablepartitionmanagement", "fetchlargemessagesautomatically",
    "queueclientmessageencoding",
}  # fmt: skip
_READ_LOWER = {key.lower() for key in READ}
_IGNORED_LOWER = {key.lower(): why for key, why in IGNORED.items()}
OTHER_PROVIDERS = {"netherite", "mssql", "azuremanaged", "durabletaskscheduler"}
_DF_PACKAGE = re.compile(r"^\s*azure[-_]functions[-_]durable\b", re.IGNORECASE | re.MULTILINE)
_OURS = re.compile(r"^\s*(orchestration(?![\w.-])|\S*orchestration-[\d.]+\S*\.whl)", re.IGNORECASE)


def local_settings(app_dir: Path, environ: MutableMapping[str, str]) -> list[Finding]:
    found: list[Finding] = []
    path = app_dir / "local.settings.json"
    if path.exists():
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as failure:
            return [Finding(Level.ERROR, path.name, f"not valid JSON: {failure}", "fix it")]
        if not isinstance(document, dict) or not isinstance(document.get("Values", {}), dict):
            problem = 'must be a JSON object whose "Values" is an object of settings'
            return [Finding(Level.ERROR, path.name, problem, "fix it")]
    try:
        values = load_local_settings(app_dir, environ)
    except HostConfigError as failure:
        return [Finding(Level.ERROR, "local.settings.json", str(failure), "fix its JSON")]
    runtime = environ.get("FUNCTIONS_WORKER_RUNTIME")
    if runtime and runtime.lower() != "python":
        found.append(
            Finding(
                Level.ERROR,
                "local.settings.json",
                f"FUNCTIONS_WORKER_RUNTIME is {runtime!r}",
                'set it to "python"',
            )
        )
    if not values and not (app_dir / "local.settings.json").exists():
        found.append(
            Finding(
                Level.NOTE,
                "local.settings.json",
                "no local.settings.json: settings come from the environment only",
                'create one with {"Values": {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}}',
            )
        )
    return found


def host_json(app_dir: Path) -> tuple[list[Finding], EngineSettings | None, HostJson | None]:
    path = app_dir / HOST_JSON
    if not path.exists():
        note = Finding(
            Level.WARNING,
            HOST_JSON,
            "no host.json: the defaults apply, and Azure refuses to deploy an app without one",
            'add {"version": "2.0"}',
        )
        return [note], EngineSettings(), HostJson()
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        shape = _shape_problem(raw)
        if shape is not None:
            return [Finding(Level.ERROR, HOST_JSON, shape, "fix host.json")], None, None
        host = HostJson.load(app_dir)
    except (HostConfigError, ValueError) as failure:
        return [Finding(Level.ERROR, HOST_JSON, str(failure), "fix host.json")], None, None
    found: list[Finding] = []
    durable = ((raw.get("extensions") or {}).get("durableTask")) or {}
    for key in sorted(durable):
        where = f"{HOST_JSON} extensions.durableTask.{key}"
        if key in READ:
            continue
        if key.lower() in _READ_LOWER:
            right = next(k for k in READ if k.lower() == key.lower())
            found.append(
                Finding(Level.WARNING, where, f"read only as {right!r}", f"spell it {right}")
            )
        elif key.lower() in _IGNORED_LOWER:
            found.append(Finding(Level.WARNING, where, f"ignored: {_IGNORED_LOWER[key.lower()]}"))
        else:
            found.append(
                Finding(
                    Level.WARNING,
                    where,
                    "not a setting of Durable Functions' Azure Storage provider nor ours",
                    "check its spelling (README, Engine settings)",
                )
            )
    provider = durable.get("storageProvider") or {}
    if isinstance(provider, dict):
        kind = str(provider.get("type") or "").strip().lower()
        if kind and kind not in ("azurestorage", "azure_storage"):
            level = Level.ERROR if kind in OTHER_PROVIDERS else Level.WARNING
            found.append(
                Finding(
                    level,
                    f"{HOST_JSON} extensions.durableTask.storageProvider.type",
                    f"storage provider {provider.get('type')!r}: only Azure Storage is "
                    f"supported (tables, queues and blobs of one account)",
                    "remove `type` (or use AzureStorage); instances in another backend "
                    "do not move over: drain them on the old app",
                )
            )
        for key in sorted(provider):
            where = f"{HOST_JSON} extensions.durableTask.storageProvider.{key}"
            lower = key.lower()
            if lower in STORAGE_READ:
                continue
            if lower == "connectionname":
                found.append(
                    Finding(
                        Level.ERROR,
                        where,
                        "identity-based storage connections are not supported: the engine "
                        "reads connectionStringName (default AzureWebJobsStorage) and would "
                        "use that account instead",
                        "set connectionStringName to an app setting holding a connection string",
                    )
                )
            elif lower in STORAGE_IGNORED:
                found.append(Finding(Level.WARNING, where, f"ignored: {_LAYOUT}"))
            else:
                found.append(
                    Finding(
                        Level.WARNING,
                        where,
                        "not a storage provider setting of Durable Functions",
                        "check its spelling",
                    )
                )
    if "extensionBundle" not in raw:
        found.append(
            Finding(
                Level.NOTE,
                HOST_JSON,
                "no extensionBundle: Azure needs it for queue, timer and blob triggers",
                'add "extensionBundle": {"id": "Microsoft.Azure.Functions.ExtensionBundle", '
                '"version": "[4.*, 5.0.0)"}',
            )
        )
    try:
        settings = EngineSettings.from_host_json(app_dir)
    except (ValueError, TypeError) as failure:
        found.append(Finding(Level.ERROR, HOST_JSON, str(failure)))
        return found, None, host
    return found, settings, host


def _shape_problem(raw: Any) -> str | None:
    """What in host.json is not the JSON object it must be (None: all are)."""
    if not isinstance(raw, dict):
        return "host.json must hold a JSON object"
    extensions = raw.get("extensions")
    if extensions is None:
        return None
    if not isinstance(extensions, dict):
        return "extensions must be a JSON object"
    for name, part in extensions.items():
        if part is not None and not isinstance(part, dict):
            return f"extensions.{name} must be a JSON object"
    durable = extensions.get("durableTask") or {}
    for name in ("storageProvider", "dashboard", "tracing", "notifications"):
        part = durable.get(name)
        if part is not None and not isinstance(part, dict):
            return f"extensions.durableTask.{name} must be a JSON object"
    return None


def storage(app_dir: Path, settings: EngineSettings, environ: Mapping[str, str]) -> list[Finding]:
    name = settings.connection_name
    value = environ.get(name)
    if not value:
        return [
            Finding(
                Level.ERROR,
                "settings",
                f"app setting {name!r} is not set: the task hub lives in that storage account",
                'locally: "AzureWebJobsStorage": "UseDevelopmentStorage=true" in '
                "local.settings.json (Azurite); on Azure: the account's connection string",
            )
        ]
    try:
        ports = loopback_ports(value)
    except (StorageConfigError, ValueError) as failure:
        return [Finding(Level.ERROR, "settings", f"{name} is not a usable connection string: "
                        f"{failure}")]  # fmt: skip
    if ports is None:
        return []  # a real account: never touched here
    host, *numbers = ports
    up = [listening(host, port) for port in numbers]
    if all(up):
        return []
    if any(up):
        return [
            Finding(
                Level.ERROR,
                "settings",
                f"{name} points at {host} ports {'/'.join(map(str, numbers))}; only some "
                "listen, so another program holds them and the host will refuse to start",
                "stop that program or point the setting at other ports",
            )
        ]
    try:
        find_azurite(app_dir)
    except AzuriteMissing:
        return [
            Finding(
                Level.ERROR,
                "settings",
                f"{name} points at the storage emulator on {host}, but nothing listens there "
                "and Azurite is not installed, so the host cannot start",
                how_to_get_azurite(app_dir),
            )
        ]
    return [
        Finding(
            Level.NOTE,
            "settings",
            f"nothing listens on {host} ports {'/'.join(map(str, numbers))} yet: the host "
            "starts the installed Azurite itself",
        )
    ]


def _our_version() -> str:
    try:
        return metadata.version("orchestration")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def requirements(app_dir: Path) -> list[Finding]:
    path = app_dir / "requirements.txt"
    if not path.exists():
        return [
            Finding(
                Level.WARNING,
                "requirements.txt",
                "no requirements.txt: Azure's build installs nothing",
                "list azure-functions and this package (README, Using it in your app)",
            )
        ]
    text = path.read_text(encoding="utf-8", errors="replace")
    found: list[Finding] = []
    if _DF_PACKAGE.search(text):
        found.append(
            Finding(
                Level.WARNING,
                "requirements.txt",
                "lists azure-functions-durable, which this app no longer needs",
                "remove it; keep this package's line",
            )
        )
    vendored = (app_dir / "orchestration" / "__init__.py").exists()  # deployed with the app
    if vendored:
        return found
    version = _our_version()
    lines = [line.strip() for line in text.splitlines()]
    ours = [line for line in lines if _OURS.match(line)]
    pinned = [line for line in ours if re.match(r"orchestration\s*==", line, re.IGNORECASE)]
    located = [line for line in ours if "@" in line or line.endswith(".whl")]
    if not ours:
        found.append(
            Finding(
                Level.ERROR,
                "requirements.txt",
                "does not list this package, so the app will not import on Azure",
                f"add orchestration=={version} with --find-links to the folder holding its "
                "wheel, or a git URL (README, Using it in your app)",
            )
        )
    elif not pinned and not located:
        found.append(
            Finding(
                Level.ERROR,
                "requirements.txt",
                f"{ours[0]!r} can resolve to an unrelated package named orchestration on PyPI",
                f"pin it: orchestration=={version} beside --find-links WHEELS_FOLDER, or give "
                "a git URL or the wheel's path",
            )
        )
    for line in lines:
        if line.startswith(("--find-links", "-f ")):
            folder = app_dir / line.split(maxsplit=1)[-1].split("=", 1)[-1].strip()
            if pinned and not list(folder.glob("orchestration-*.whl")):
                found.append(
                    Finding(
                        Level.ERROR,
                        "requirements.txt",
                        f"--find-links {folder.name} holds no orchestration wheel",
                        f"copy orchestration-{version}-py3-none-any.whl there (and keep the "
                        "folder out of .gitignore and .funcignore)",
                    )
                )
    return found
