"""Orchestration versions: how they compare, and which of them a worker may run.

The rules are Durable Functions' (host.json `extensions.durableTask`: `defaultVersion`,
`versionMatchStrategy`, `versionFailureStrategy`). Versions compare as DF documents them:
two empty (or absent) versions are equal; an empty version is older than any other; two
versions that both parse as .NET's `System.Version` ("1.2", "1.2.3", "1.2.3.4") compare by
their components; anything else compares as text, ignoring case ("10" sorts before "9"; use
"10.0" and "9.0" for numeric order, as in DF).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

# System.Version.TryParse: two to four non-negative 32-bit components, spaces around allowed.
_DOTNET_VERSION = re.compile(r"^\s*(\d+)\s*(?:\.\s*(\d+)\s*){1,3}$")
_INT32_MAX = 2**31 - 1


class VersionMatchStrategy(StrEnum):
    """Which instances a worker runs, by their version beside its `defaultVersion`."""

    NONE = "None"  # every instance, whatever its version
    STRICT = "Strict"  # only instances of exactly its version
    CURRENT_OR_OLDER = "CurrentOrOlder"  # instances of its version or an older one (DF's default)


class VersionFailureStrategy(StrEnum):
    """What a worker does with an instance it may not run."""

    REJECT = "Reject"  # leave it for a worker that may (DF's default)
    FAIL = "Fail"  # end it as Failed


def parse_dotnet_version(text: str) -> tuple[int, ...] | None:
    """The components of `text` as `System.Version.TryParse` reads it, or None."""
    if not _DOTNET_VERSION.match(text):
        return None
    parts = tuple(int(part) for part in text.split("."))
    if any(part > _INT32_MAX for part in parts):
        return None
    return parts


def compare_versions(left: str | None, right: str | None) -> int:
    """Negative, zero or positive as `left` is older than, equal to or newer than `right`."""
    left_empty = not left or not left.strip()
    right_empty = not right or not right.strip()
    if left_empty or right_empty:
        return int(right_empty) - int(left_empty)
    assert left is not None and right is not None
    left_parts, right_parts = parse_dotnet_version(left), parse_dotnet_version(right)
    if left_parts is not None and right_parts is not None:
        # An absent build or revision is -1 in System.Version: "1.0" < "1.0.0".
        padded_left = left_parts + (-1,) * (4 - len(left_parts))
        padded_right = right_parts + (-1,) * (4 - len(right_parts))
        return (padded_left > padded_right) - (padded_left < padded_right)
    # .NET's OrdinalIgnoreCase compares upper-cased UTF-16 code units.
    folded_left, folded_right = left.upper(), right.upper()
    return (folded_left > folded_right) - (folded_left < folded_right)


@dataclass(frozen=True, slots=True)
class VersioningPolicy:
    """A worker's versioning settings, and the verdict on an instance's version.

    With no `default_version` nothing is checked: an app that never set one runs every
    instance, as before versioning existed (including those started with an explicit version).
    """

    default_version: str | None = None
    match: VersionMatchStrategy = VersionMatchStrategy.CURRENT_OR_OLDER
    failure: VersionFailureStrategy = VersionFailureStrategy.REJECT

    @property
    def checks(self) -> bool:
        """True when some instance versions are refused."""
        return bool(self.default_version) and self.match is not VersionMatchStrategy.NONE

    def can_run(self, version: str | None) -> bool:
        """May this worker run an instance of `version`?"""
        if not self.checks:
            return True
        order = compare_versions(version, self.default_version)
        if self.match is VersionMatchStrategy.STRICT:
            return order == 0
        return order <= 0

    def mismatch(self, version: str | None) -> str:
        """Why an instance of `version` may not run here (for logs and the failure)."""
        wanted = "equal to" if self.match is VersionMatchStrategy.STRICT else "at most"
        return (
            f"The orchestration's version {_show(version)} does not match this worker's "
            f"defaultVersion {_show(self.default_version)} (versionMatchStrategy "
            f"{self.match.value}: the version must be {wanted} the defaultVersion)."
        )


def _show(version: str | None) -> str:
    return repr(version) if version else "(none)"
