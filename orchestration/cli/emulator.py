"""`python -m orchestration azurite`: run the storage emulator for an app, installing it first
when asked (`--install`), on the development storage ports `UseDevelopmentStorage=true` means.

For a user whose app is not this repository: their folder has no `make setup`, and the host
starts Azurite only when one is installed. This command installs it into the app's own
`node_modules` (npm, Node.js 20) and runs it in the foreground, data in `.azurite/`.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from orchestration.host.azurite import (
    AZURITE_VERSION,
    Azurite,
    AzuriteError,
    AzuriteMissing,
    find_or_install,
    is_listening,
)

DEV_PORTS = (10000, 10001, 10002)  # blob, queue, table: UseDevelopmentStorage=true's


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    emulator = commands.add_parser(
        "azurite",
        help="run Azurite (the storage emulator) for an app; --install gets it first",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    emulator.add_argument("--app-dir", type=Path, default=Path("."), help="the app's folder")
    emulator.add_argument(
        "--install",
        action="store_true",
        help=f"npm install azurite@{AZURITE_VERSION} into the app's node_modules when missing",
    )
    emulator.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    emulator.add_argument(
        "--ports",
        default=",".join(map(str, DEV_PORTS)),
        help="blob,queue,table ports (default 10000,10001,10002: UseDevelopmentStorage's)",
    )


def run(args: argparse.Namespace) -> int:
    app_dir = Path(args.app_dir).resolve()
    host = str(args.host)
    try:
        blob, queue, table = (int(port) for port in str(args.ports).split(","))
    except ValueError:
        print("--ports takes three numbers: blob,queue,table")
        return 2
    up = [is_listening(host, port) for port in (blob, queue, table)]
    if all(up):
        print(f"Something already listens on {host} ports {blob}/{queue}/{table}.")
        return 0
    if any(up):
        print(f"Only some of {host} ports {blob}/{queue}/{table} are free: another program "
              "holds the others. Stop it or choose --ports.")  # fmt: skip
        return 1
    try:
        executable = find_or_install(app_dir, bool(args.install), print)
    except AzuriteMissing as missing:
        print(str(missing))
        return 2
    except AzuriteError as failure:
        print(str(failure))
        return 1
    azurite = Azurite(app_dir / ".azurite", host, blob, queue, table, executable)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        azurite.start()
    except AzuriteError as failure:
        print(str(failure))
        return 1
    if stop.is_set():  # asked to stop while it started
        azurite.stop()
        return 0
    print(
        f"Azurite (pid {azurite.pid}) serves {host} ports {blob}/{queue}/{table}, data in "
        f"{azurite.location}"
        + (
            "; AzureWebJobsStorage=UseDevelopmentStorage=true reaches it. "
            if (blob, queue, table) == DEV_PORTS
            else ". "
        )
        + "Ctrl-C stops it.",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            code = azurite.exit_code()
            if code is not None:
                print(f"Azurite exited with code {code}")
                return 1
    finally:
        azurite.stop()
    return 0
