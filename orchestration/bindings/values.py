"""What a storage binding hands a function and takes back from it, as the Python worker does.

Blob input and trigger: `func.InputStream` (name, length, uri, blob_properties, metadata),
`bytes` or `str`, chosen by the parameter's annotation (else the binding's `dataType`).
Blob output: `str`, `bytes` or a readable stream. Table input: the entity as a JSON string
(a JSON array when no row key is given; None when nothing matches). Table output: a JSON object
or array (a string or the value itself) whose PartitionKey/RowKey the binding may supply.
Queue output: a string, bytes, a JSON-able value or a list of them. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import azure.functions as func


class BindingValueError(TypeError):
    """A function gave an output binding a value it cannot take."""


@dataclass(frozen=True)
class BlobContent:
    """A blob as read: its bytes and what the Functions host tells a function about it."""

    container: str
    name: str
    data: bytes
    uri: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"{self.container}/{self.name}"


def unwrap_out(annotation: Any) -> Any:
    """`T` of `func.Out[T]` (the annotation itself otherwise)."""
    if typing.get_origin(annotation) is func.Out:
        args = typing.get_args(annotation)
        return args[0] if args else Any
    return annotation


def _kind(annotation: Any, data_type: str | None) -> str:
    annotation = unwrap_out(annotation)
    if annotation is bytes:
        return "bytes"
    if annotation is str:
        return "str"
    if inspect.isclass(annotation) and issubclass(annotation, func.InputStream):
        return "stream"
    kind = (data_type or "").lower()
    return {"binary": "bytes", "string": "str"}.get(kind, "stream")


def blob_parameter(content: BlobContent | None, annotation: Any, data_type: str | None) -> Any:
    """The value a blob input (or trigger) parameter receives; None for a missing blob."""
    if content is None:
        return None
    kind = _kind(annotation, data_type)
    if kind == "bytes":
        return content.data
    if kind == "str":
        try:
            return content.data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise BindingValueError(
                f"blob {content.path!r} is not UTF-8 text; annotate the parameter as bytes "
                f"or func.InputStream"
            ) from err
    return func.blob.InputStream(
        data=content.data,
        name=content.path,
        uri=content.uri,
        length=len(content.data),
        blob_properties=dict(content.properties),
        metadata=dict(content.metadata),
    )


def blob_bytes(value: Any) -> bytes:
    """What a blob output stores for the value a function set."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    read = getattr(value, "read", None)
    if callable(read):
        data = read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    raise BindingValueError(
        f"a blob output takes str, bytes or a readable stream, not {type(value).__name__}"
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def table_json(entities: list[Mapping[str, Any]] | Mapping[str, Any] | None) -> str | None:
    """A table input's JSON: one entity as an object, a query's as an array."""
    if entities is None:
        return None
    if isinstance(entities, Mapping):
        return json.dumps({k: _json_value(v) for k, v in entities.items()})
    return json.dumps([{k: _json_value(v) for k, v in e.items()} for e in entities])


def table_parameter(value: str | None, annotation: Any) -> Any:
    """A table input's value for its parameter: the JSON string, or parsed for dict/list."""
    target = unwrap_out(annotation)
    if value is None or target in (str, Any, inspect.Parameter.empty):
        return value
    origin = typing.get_origin(target) or target
    if origin in (dict, list):
        return json.loads(value)
    return value


def table_entities(
    value: Any, partition_key: str | None, row_key: str | None
) -> list[dict[str, Any]]:
    """The entities a table output writes, keys filled from the binding where unset."""
    document = value
    if isinstance(value, (str, bytes, bytearray)):
        try:
            document = json.loads(value)
        except ValueError as err:
            raise BindingValueError(f"a table output takes a JSON object or array: {err}") from err
    items = document if isinstance(document, list) else [document]
    entities: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, Mapping):
            raise BindingValueError(
                f"a table output takes JSON objects (entities), not {type(item).__name__}"
            )
        entity = dict(item)
        for key, given in (("PartitionKey", partition_key), ("RowKey", row_key)):
            found = next((k for k in entity if k.lower() == key.lower()), None)
            if found is not None and found != key:
                entity[key] = entity.pop(found)
            if key not in entity and given is not None:
                entity[key] = given
            if key not in entity or not isinstance(entity[key], str):
                raise BindingValueError(
                    f"a table output entity needs a string {key} (in the entity or the binding)"
                )
        entity.pop("odata.etag", None)
        entity.pop("ETag", None)
        entity.pop("Timestamp", None)
        entities.append(entity)
    return entities


def queue_bodies(value: Any) -> list[bytes | str]:
    """The messages a queue output sends for the value a function set (a list: several)."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    bodies: list[bytes | str] = []
    for item in items:
        if isinstance(item, (str, bytes, bytearray)):
            bodies.append(item if isinstance(item, str) else bytes(item))
        elif isinstance(item, func.QueueMessage):
            bodies.append(item.get_body())
        elif isinstance(item, (dict, int, float, bool)):
            bodies.append(json.dumps(item))
        else:
            raise BindingValueError(f"cannot write {type(item).__name__} to a queue output binding")
    return bodies


def encode_queue_message(body: bytes | str, encoding: str) -> str:
    """Queue message content for a body, under host.json messageEncoding; BindingValueError
    for bytes that are not UTF-8 under `none` (a queue message is text)."""
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    if encoding == "base64":
        return base64.b64encode(raw).decode("ascii")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BindingValueError(
            f"a queue message under messageEncoding 'none' must be UTF-8 text ({err}); "
            f"send str, or set messageEncoding to base64"
        ) from err


def decode_queue_message(content: str, encoding: str) -> bytes:
    """The body of stored queue content; ValueError when it is not valid base64."""
    if encoding == "base64":
        try:
            return base64.b64decode(content.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as err:
            raise ValueError(f"message is not valid base64: {err}") from err
    return content.encode("utf-8")
