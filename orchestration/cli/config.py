"""Where the CLI's task hub lives: the storage connection and the hub name.

Connection: `--connection`, else the app setting that host.json names
(`extensions.durableTask.storageProvider.connectionStringName`, default `AzureWebJobsStorage`)
from the environment, else from the app dir's local.settings.json. Hub: `--hub`, else host.json's
`extensions.durableTask.hubName` (`%Setting%` references resolved the same way), else the
default hub name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from orchestration.functions.settings import EngineSettings
from orchestration.host.settings import HostConfigError, load_local_settings
from orchestration.storage.names import InvalidNameError, validate_hub_name


class CliError(Exception):
    """A failure the CLI reports as one line and a non-zero exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Target:
    connection_string: str
    hub_name: str
    settings: EngineSettings


def resolve_target(app_dir: Path, connection: str | None, hub: str | None) -> Target:
    """The storage and hub the command works on, from options, environment and app files."""
    try:
        load_local_settings(app_dir, os.environ)
        settings = EngineSettings.from_host_json(app_dir)
    except (HostConfigError, ValueError, OSError) as failure:
        raise CliError(f"cannot read the app settings in {app_dir}: {failure}") from None
    connection_string = connection or os.environ.get(settings.connection_name)
    if not connection_string:
        raise CliError(
            f"no storage connection: set {settings.connection_name}, pass --connection, or run "
            f"in (or point --app-dir at) an app with local.settings.json"
        )
    hub_name = hub or settings.hub_name
    if "%" in hub_name:
        raise CliError(f"the hub name {hub_name!r} refers to an app setting that is not set")
    try:
        validate_hub_name(hub_name)
    except InvalidNameError as failure:
        raise CliError(str(failure)) from None
    return Target(connection_string, hub_name, settings)
