"""A pytest plugin: after the whole run, no log written under the run's temp dir may hold a
key (README "Security": no key ever reaches a log).

It reads every `*.log` under pytest's base temp dir (host logs, Azurite's, the torture
run's) and looks for the keys the tests hand out, the storage account key, every key a host
generated into a `.host-keys.json`, and any `code=` value that was not redacted. A finding
fails the run (exit status 1) and is reported with the secret masked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import pytest

from orchestration.host.azurite import DEV_KEY

_CODE_VALUE = re.compile(r"(?<![A-Za-z0-9])code=(?!\[redacted\])([^&\s'\"]{8,})")


def known_secrets(root: Path, extra: Iterable[str] = ()) -> set[str]:
    """The test keys, the account key, and every key generated into a keys file under root."""
    from tests.chaos.cluster import FUNCTION_KEY as CHAOS_FUNCTION_KEY
    from tests.chaos.cluster import MASTER_KEY as CHAOS_MASTER_KEY
    from tests.conftest import TEST_FUNCTION_KEY, TEST_MASTER_KEY

    found = {TEST_MASTER_KEY, TEST_FUNCTION_KEY, CHAOS_MASTER_KEY, CHAOS_FUNCTION_KEY, DEV_KEY}
    found.update(extra)
    for keys_file in root.rglob(".host-keys.json"):
        try:
            document = json.loads(keys_file.read_text())
        except (OSError, ValueError):
            continue
        found.add(str(document.get("masterKey", "")))
        found.update(str(v) for v in (document.get("functionKeys") or {}).values())
        for keys in (document.get("functions") or {}).values():
            found.update(str(v) for v in keys.values())
    return {secret for secret in found if len(secret) >= 8}


def findings(root: Path, secrets: set[str]) -> list[str]:
    """`file:line: what` for every log line under root that holds a secret."""
    found: list[str] = []
    for log in sorted(root.rglob("*.log")):
        try:
            text = log.read_text(errors="replace")
        except OSError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            leaked = [s for s in secrets if s in line]
            if _CODE_VALUE.search(line):
                leaked.append("an unredacted code= value")
            for secret in leaked:
                shown = secret if secret.startswith("an ") else f"{secret[:3]}...{secret[-2:]}"
                found.append(f"{log}:{number}: {shown}")
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:
        return
    try:
        root = factory.getbasetemp()
    except (OSError, ValueError):
        return
    leaks = findings(root, known_secrets(root))
    if leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "keys found in logs written by this run:\n  " + "\n  ".join(leaks[:50])
        if reporter is not None:
            reporter.write_sep("=", "log audit failed", red=True)
            reporter.write_line(message)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
