"""Function and admin keys, and the authLevel check on HTTP requests."""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

KEYS_FILE = ".host-keys.json"
MASTER_KEY_SETTING = "FUNCTIONS_MASTER_KEY"
FUNCTION_KEY_SETTING = "FUNCTIONS_FUNCTION_KEY"


def _new_key() -> str:
    return secrets.token_urlsafe(40)


@dataclass(frozen=True)
class HostKeys:
    """The master (admin) key, host-wide function keys and per-function keys."""

    master: str
    host_function_keys: Mapping[str, str]
    function_keys: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def default_function_key(self) -> str:
        """The host key named `default`, valid for every function-level function."""
        return self.host_function_keys["default"]

    def authorize(self, auth_level: str, function_name: str, provided: str | None) -> bool:
        """Whether a request carrying key `provided` may call a function at `auth_level`."""
        level = auth_level.lower()
        if level == "anonymous":
            return True
        if not provided:
            return False
        if _equal(provided, self.master):
            return True
        if level != "function":
            return False  # admin, system: master key only
        candidates = [*self.host_function_keys.values()]
        candidates += self.function_keys.get(function_name, {}).values()
        return any(_equal(provided, key) for key in candidates)

    def to_json(self) -> dict[str, object]:
        """The keys file's document."""
        return {
            "masterKey": self.master,
            "functionKeys": dict(self.host_function_keys),
            "functions": {name: dict(keys) for name, keys in self.function_keys.items()},
        }


def _equal(a: str, b: str) -> bool:
    # A header's bytes that are not UTF-8 reach us as lone surrogates: compare them as bytes.
    return hmac.compare_digest(
        a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape")
    )


def _read(path: Path) -> dict[str, object] | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _persisted(path: Path) -> dict[str, object]:
    """Read the keys file, creating it (exclusively, so concurrent hosts agree) when absent."""
    document = _read(path)
    if document is not None:
        return document
    fresh = HostKeys(master=_new_key(), host_function_keys={"default": _new_key()}).to_json()
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(fresh, handle, indent=2)
        return fresh
    return _read(path) or fresh


def load_keys(app_dir: Path, settings: Mapping[str, str]) -> HostKeys:
    """Keys from settings (FUNCTIONS_MASTER_KEY, FUNCTIONS_FUNCTION_KEY), else from
    DIR/.host-keys.json, generated and saved there on first start."""
    master = settings.get(MASTER_KEY_SETTING)
    function_key = settings.get(FUNCTION_KEY_SETTING)
    if master and function_key:
        return HostKeys(master=master, host_function_keys={"default": function_key})
    document = _persisted(app_dir / KEYS_FILE)
    host_keys = document.get("functionKeys")
    per_function = document.get("functions")
    host_keys = host_keys if isinstance(host_keys, dict) else {}
    per_function = per_function if isinstance(per_function, dict) else {}
    host_function_keys = {str(k): str(v) for k, v in host_keys.items()}
    if function_key:
        host_function_keys["default"] = function_key
    host_function_keys.setdefault("default", _new_key())
    return HostKeys(
        master=master or str(document.get("masterKey") or _new_key()),
        host_function_keys=host_function_keys,
        function_keys={
            str(name): {str(k): str(v) for k, v in keys.items()}
            for name, keys in per_function.items()
            if isinstance(keys, dict)
        },
    )
