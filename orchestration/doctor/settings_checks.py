"""The doctor's reading of an app's settings: local.settings.json, host.json (Durable
Functions' `extensions.durableTask` keys we read, those we ignore and why), the storage
connection, and requirements.txt."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, MutableMapping
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
}
STORAGE_READ = {"connectionStringName", "type", "connectionName"}
STORAGE_IGNORED = {
    "partitionCount", "controlQueueBatchSize", "controlQueueBufferThreshold",
    "controlQueueVisibilityTimeout", "workItemQueueVisibilityTimeout", "maxQueuePollingInterval",
    "trackingStoreConnectionStringName", "trackingStoreNamePrefix", "useLegacyPartitionManagement",
    "useTablePartitionManagement", "fetchLargeMessagesAutomatically",
}  # fmt: skip
OTHER_PROVIDERS = {"netherite", "mssql", "azuremanaged", "durabletaskscheduler"}
_DF_PACKAGE = re.compile(r"^\s*azure[-_]functions[-_]durable\b", re.IGNORECASE | re.MULTILINE)
_OURS = re.compile(
    r"^\s*(orchestration\b|.*orchestration-[\d.]+.*\.whl|.*/orchestration(\.git)?\b)",
    re.IGNORECASE | re.MULTILINE,
)


def local_settings(app_dir: Path, environ: MutableMapping[str, str]) -> list[Finding]:
    found: list[Finding] = []
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
        host = HostJson.load(app_dir)
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (HostConfigError, ValueError) as failure:
        return [Finding(Level.ERROR, HOST_JSON, str(failure), "fix host.json")], None, None
    found: list[Finding] = []
    durable = ((raw.get("extensions") or {}).get("durableTask")) or {}
    if not isinstance(durable, dict):
        durable = {}
    for key in sorted(durable):
        where = f"{HOST_JSON} extensions.durableTask.{key}"
        if key in READ:
            continue
        if key in IGNORED:
            found.append(Finding(Level.WARNING, where, f"ignored: {IGNORED[key]}"))
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
        for key in sorted(set(provider) - STORAGE_READ):
            if key in STORAGE_IGNORED:
                found.append(
                    Finding(
                        Level.WARNING,
                        f"{HOST_JSON} extensions.durableTask.storageProvider.{key}",
                        f"ignored: {_LAYOUT}",
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
    except StorageConfigError as failure:
        return [Finding(Level.ERROR, "settings", f"{name}: {failure}")]
    if ports is None:
        return []  # a real account: never touched here
    host, *numbers = ports
    if all(listening(host, port) for port in numbers):
        return []
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
    if not _OURS.search(text) and not vendored:
        found.append(
            Finding(
                Level.ERROR,
                "requirements.txt",
                "does not list this package, so the app will not import on Azure",
                "add a line for it (README, Using it in your app: a wheel in the app with "
                "--find-links, or a git URL)",
            )
        )
    return found
