"""Count every request Azurite served, by kind, from its access log (its stdout).

`orchestration.host.azurite.Azurite` sends Azurite's stdout to `<location>/azurite.log`, one
line per request (`"METHOD /account/path?query HTTP/1.1" status`). Unlike the engine's own
counters, this also sees the host's queue listeners (Azure SDK) and the bench client.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

_REQUEST = re.compile(r'"([A-Z]+) /[^/ ]+/([^ ]*) HTTP/[\d.]+"')


def classify(method: str, path: str) -> str:
    resource, _, query = path.partition("?")
    if resource.endswith("$batch"):
        return "table.batch"
    if "/messages" in resource:
        if method == "GET":
            return "queue.peek" if "peekonly" in query else "queue.receive"
        if method == "POST":
            return "queue.send"
        if method == "DELETE":
            return "queue.delete"
        if method == "PUT":
            return "queue.update"
    if "(PartitionKey=" in resource:
        return f"table.{method.lower()}"
    if method == "GET" and ("()" in resource or "$filter" in query):
        return "table.query"
    if method == "POST" and "/" not in resource and "comp=" not in query:
        return "table.insert"
    return f"other.{method.lower()}"


class AccessLog:
    """Requests appended to an Azurite access log since the last `take()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def take(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        if not self.path.exists():
            return {}
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            data = log.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].decode("utf-8", errors="replace").splitlines():
            match = _REQUEST.search(line)
            if match:
                counts[classify(match.group(1), match.group(2))] += 1
        return dict(sorted(counts.items()))
