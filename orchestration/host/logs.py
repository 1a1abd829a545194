"""Logging set-up of the host: plain lines by default, JSON lines on request; no key ever
reaches a line.

Every line is redacted as it is formatted (exception text included): the host's own keys and
the storage account keys it knows are replaced, and so is whatever follows `code=`,
`x-functions-key`, `AccountKey=`, `sig=` or a Shared Key `Authorization` value, since a
request line or an error message may carry a key the host does not know (another app's, a
mistyped one).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable

LOG_FORMAT_SETTING = "ORCHESTRATION_HOST_LOG_FORMAT"
REDACTED = "[redacted]"
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_PATTERNS = re.compile(
    r"(?P<name>(?<![A-Za-z0-9])(?:code|sig|AccountKey|SharedAccessSignature)=)[^&;\s'\"]+"
    r"|(?P<header>x-functions-key['\"]?\s*[:=,]\s*['\"]?)[^\s'\",}]+"
    r"|(?P<auth>SharedKey(?:Lite)?\s+[^:\s]+:)[A-Za-z0-9+/=]+",
    re.IGNORECASE,
)
_MIN_SECRET = 8  # shorter values would blank out ordinary words
_secrets: set[str] = set()


def add_secrets(values: Iterable[str | None]) -> None:
    """Values that must never appear in a log line (keys the host holds)."""
    for value in values:
        if value and len(value) >= _MIN_SECRET:
            _secrets.add(value)


def secrets_of_settings(settings: dict[str, str]) -> list[str]:
    """The account keys and SAS signatures in connection-string settings."""
    found: list[str] = []
    for value in settings.values():
        for part in value.split(";"):
            name, _, secret = part.partition("=")
            if name.strip().lower() in ("accountkey", "sharedaccesssignature") and secret:
                found.append(secret.strip())
    return found


def redact(text: str) -> str:
    """`text` with every known secret and every key-shaped value replaced."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _PATTERNS.sub(
        lambda m: f"{m.group('name') or m.group('header') or m.group('auth')}{REDACTED}", text
    )


class RedactingFormatter(logging.Formatter):
    """The standard line format, redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the record's extra fields (function, invocation_id...)."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        document.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(document, default=str))


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stdout; ORCHESTRATION_HOST_LOG_FORMAT=json switches to JSON lines."""
    handler = logging.StreamHandler(sys.stdout)
    if os.environ.get(LOG_FORMAT_SETTING, "").lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            RedactingFormatter("%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The SDKs log every HTTP request at INFO; the host's own lines are what matter here.
    for noisy in ("azure", "aiohttp.access", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
