"""Names of a task hub's resources, and the validation of every name and key we store.

Azure's rules: table names are 3-63 alphanumerics starting with a letter; queue and container
names 3-63 lowercase letters, digits and single hyphens. A hub name must make valid names of
all of them, so it is 3-45 letters and digits, starting with a letter (Durable Functions' rule).
Instance ids become PartitionKeys: Table keys forbid '/', '\\', '#', '?' and control
characters, so ids are checked, and the few characters we accept but keys do not are escaped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from orchestration.core.errors import OrchestrationError

_HUB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,44}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.]{0,127}$")
MAX_INSTANCE_ID_LENGTH = 256
MAX_EVENT_NAME_LENGTH = 256


class InvalidNameError(OrchestrationError, ValueError):
    """A hub name, instance id, function name or event name that cannot be stored."""


def validate_hub_name(name: str) -> str:
    if not _HUB_NAME.match(name):
        raise InvalidNameError(
            f"Invalid task hub name {name!r}: use 3-45 letters and digits, starting with a "
            f"letter (it names the hub's tables, queues and blob container)."
        )
    return name


def validate_instance_id(instance_id: object) -> str:
    """Check an instance id before it reaches a key or a filter."""
    if not isinstance(instance_id, str) or not instance_id:
        raise InvalidNameError("Instance id must be a non-empty string.")
    if len(instance_id) > MAX_INSTANCE_ID_LENGTH:
        raise InvalidNameError(
            f"Instance id is {len(instance_id)} characters long; the limit is "
            f"{MAX_INSTANCE_ID_LENGTH}."
        )
    if _CONTROL.search(instance_id):
        raise InvalidNameError("Instance id must not contain control characters.")
    if instance_id != instance_id.strip():
        raise InvalidNameError("Instance id must not start or end with white space.")
    return instance_id


def validate_function_name(name: object, what: str = "Function name") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidNameError(
            f"{what} {name!r} is not valid: use up to 128 letters, digits, '_', '-' and '.', "
            f"starting with a letter or '_'."
        )
    return name


def validate_event_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidNameError("Event name must be a non-empty string.")
    if len(name) > MAX_EVENT_NAME_LENGTH or _CONTROL.search(name):
        raise InvalidNameError(
            f"Event name must be at most {MAX_EVENT_NAME_LENGTH} characters, with no control "
            f"characters."
        )
    return name


_KEY_ESCAPES = {"%": "%25", "/": "%2F", "\\": "%5C", "#": "%23", "?": "%3F"}
_KEY_UNSAFE = re.compile(r"[%/\\#?]")
_KEY_ESCAPED = re.compile(r"%(25|2F|5C|23|3F)")
_UNESCAPES = {v[1:]: k for k, v in _KEY_ESCAPES.items()}


def to_key(instance_id: str) -> str:
    """The PartitionKey of an instance id: the characters keys forbid are %-escaped."""
    return _KEY_UNSAFE.sub(lambda m: _KEY_ESCAPES[m.group(0)], validate_instance_id(instance_id))


def from_key(key: str) -> str:
    return _KEY_ESCAPED.sub(lambda m: _UNESCAPES[m.group(1)], key)


def odata_string(value: str) -> str:
    """A string literal for an OData filter: quotes doubled, control characters refused."""
    if _CONTROL.search(value):
        raise InvalidNameError("Filter values must not contain control characters.")
    return "'" + value.replace("'", "''") + "'"


def odata_datetime(value: datetime) -> str:
    """A datetime literal for an OData filter, in UTC."""
    return f"datetime'{value.astimezone(UTC).isoformat().replace('+00:00', 'Z')}'"


@dataclass(frozen=True, slots=True)
class HubNames:
    """The storage resources of one task hub."""

    hub: str

    def __post_init__(self) -> None:
        validate_hub_name(self.hub)

    @property
    def instances_table(self) -> str:
        return f"{self.hub}Instances"

    @property
    def timers_table(self) -> str:
        return f"{self.hub}Timers"

    @property
    def control_queue(self) -> str:
        return f"{self.hub.lower()}-control"

    @property
    def work_item_queue(self) -> str:
        return f"{self.hub.lower()}-workitems"

    @property
    def starts_queue(self) -> str:
        return f"{self.hub.lower()}-starts"

    @property
    def payload_container(self) -> str:
        return f"{self.hub.lower()}-payloads"

    @property
    def lease_container(self) -> str:
        return f"{self.hub.lower()}-leases"
