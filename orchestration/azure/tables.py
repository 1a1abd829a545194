"""Azure Table storage over plain aiohttp: entities, queries with continuation, transactions.

Wire format: JSON. Writes send ``application/json`` bodies with ``@odata.type`` annotations
for every type JSON cannot carry (Int64, Double, DateTime, Binary, Guid); reads ask for
``application/json;odata=minimalmetadata`` so the service returns those annotations, and
values come back as the Python types they were written as:

=================  =============  =============================================
Python             EDM type       note
=================  =============  =============================================
str                Edm.String     Azurite refuses strings over 32,768 chars
bool               Edm.Boolean
int                Edm.Int32      when -2**31 <= v < 2**31, else Edm.Int64
float              Edm.Double     always annotated, so 1.0 stays a float
datetime           Edm.DateTime   naive values are taken as UTC; read back as
                                  timezone-aware UTC (microsecond precision)
bytes              Edm.Binary     base64 on the wire
uuid.UUID          Edm.Guid
None               (omitted)      tables have no null: the property is not sent
=================  =============  =============================================

The service's ``Timestamp`` property is not kept in the entity dict: it is
``Entity.timestamp``. ``Entity.etag`` is the entity's ETag, for conditional updates.
"""

from __future__ import annotations

import base64
import json
import math
import re
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from orchestration.azure._http import Response, execute
from orchestration.azure.connection import StorageAccount
from orchestration.azure.errors import (
    BatchError,
    Conflict,
    ResourceNotFound,
    StorageError,
    parse_error_body,
)
from orchestration.azure.signing import sign_table_shared_key

API_VERSION = "2019-02-02"
MAX_BATCH = 100
MAX_BATCH_BYTES = 4 * 1024 * 1024
_ACCEPT_MINIMAL = "application/json;odata=minimalmetadata"
_ACCEPT_NONE = "application/json;odata=nometadata"
_JSON = "application/json"
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_BAD_KEY_CHARS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Mode = Literal["merge", "replace"]
Continuation = tuple[str, str | None]


class Entity(dict[str, Any]):
    """A table entity: its properties (PartitionKey and RowKey included) plus metadata."""

    __slots__ = ("etag", "timestamp")

    def __init__(
        self,
        *args: Any,
        etag: str | None = None,
        timestamp: datetime | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.etag = etag
        self.timestamp = timestamp

    @property
    def partition_key(self) -> str:
        return str(self["PartitionKey"])

    @property
    def row_key(self) -> str:
        return str(self["RowKey"])

    def __repr__(self) -> str:
        return f"Entity({dict.__repr__(self)}, etag={self.etag!r})"


@dataclass(frozen=True, slots=True)
class TableOperation:
    """One operation of an entity group transaction; build with the class methods."""

    kind: Literal["insert", "upsert", "update", "delete"]
    entity: Mapping[str, Any]
    mode: Mode = "merge"
    etag: str | None = None

    @classmethod
    def insert(cls, entity: Mapping[str, Any]) -> TableOperation:
        return cls("insert", entity)

    @classmethod
    def upsert(cls, entity: Mapping[str, Any], mode: Mode = "merge") -> TableOperation:
        return cls("upsert", entity, mode)

    @classmethod
    def update(
        cls, entity: Mapping[str, Any], etag: str | None = None, mode: Mode = "merge"
    ) -> TableOperation:
        """Update an existing entity if its ETag matches (``etag`` defaults to the entity's
        own ``.etag`` when it is an `Entity`, else ``"*"``)."""
        if etag is None:
            etag = getattr(entity, "etag", None) or "*"
        return cls("update", entity, mode, etag)

    @classmethod
    def delete(cls, partition_key: str, row_key: str, etag: str = "*") -> TableOperation:
        return cls("delete", {"PartitionKey": partition_key, "RowKey": row_key}, etag=etag)


# ---------------------------------------------------------------------------- EDM encoding


def _format_datetime(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def _parse_datetime(text: str) -> datetime:
    """Parse ``2026-11-25T12:10:00.1234567Z`` (0-7 fraction digits) as aware UTC."""
    if not text.endswith("Z"):
        return datetime.fromisoformat(text).astimezone(UTC)
    main, _, frac = text[:-1].partition(".")
    dt = datetime.fromisoformat(main).replace(tzinfo=UTC)
    if frac:
        dt = dt.replace(microsecond=int((frac + "000000")[:6]))
    return dt


def encode_entity(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object for an entity, with ``@odata.type`` annotations where needed."""
    out: dict[str, Any] = {}
    for name, value in entity.items():
        if value is None:
            continue
        if isinstance(value, str | bool):
            out[name] = value
        elif isinstance(value, int):
            if _INT32_MIN <= value <= _INT32_MAX:
                out[name] = value
            elif _INT64_MIN <= value <= _INT64_MAX:
                out[name] = str(value)
                out[name + "@odata.type"] = "Edm.Int64"
            else:
                raise ValueError(f"property {name!r}: int {value} does not fit in Edm.Int64")
        elif isinstance(value, float):
            if math.isfinite(value):
                out[name] = value
            else:
                out[name] = "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
            out[name + "@odata.type"] = "Edm.Double"
        elif isinstance(value, datetime):
            out[name] = _format_datetime(value)
            out[name + "@odata.type"] = "Edm.DateTime"
        elif isinstance(value, bytes | bytearray | memoryview):
            out[name] = base64.b64encode(bytes(value)).decode("ascii")
            out[name + "@odata.type"] = "Edm.Binary"
        elif isinstance(value, uuid.UUID):
            out[name] = str(value)
            out[name + "@odata.type"] = "Edm.Guid"
        else:
            raise TypeError(f"property {name!r}: unsupported type {type(value).__name__}")
    return out


def _decode_typed(value: Any, edm: str) -> Any:
    if edm == "Edm.Int64":
        return int(value)
    if edm == "Edm.DateTime":
        return _parse_datetime(value)
    if edm == "Edm.Double":
        return float(value)
    if edm == "Edm.Binary":
        return base64.b64decode(value)
    if edm == "Edm.Guid":
        return uuid.UUID(value)
    return value


def decode_entity(doc: Mapping[str, Any], etag: str | None = None) -> Entity:
    """An `Entity` from a minimalmetadata JSON object."""
    entity = Entity(etag=etag or doc.get("odata.etag"))
    types: list[tuple[str, str]] | None = None
    for key, value in doc.items():
        if "@" in key or key.startswith("odata."):
            if key.endswith("@odata.type"):
                if types is None:
                    types = []
                types.append((key[:-11], value))
            continue
        entity[key] = value
    if types:
        for name, edm in types:
            if name in entity:
                entity[name] = _decode_typed(entity[name], edm)
    ts = entity.pop("Timestamp", None)
    if ts is not None:
        entity.timestamp = ts if isinstance(ts, datetime) else _parse_datetime(ts)
    return entity


def odata_string(value: str) -> str:
    """``value`` as an OData string literal for a filter: quoted, inner quotes doubled.

    ``f"PartitionKey eq {odata_string(instance_id)}"`` cannot be broken out of.
    """
    return "'" + value.replace("'", "''") + "'"


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _quote_key(key: Any, what: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"{what} must be a str, got {type(key).__name__}")
    if _BAD_KEY_CHARS.search(key):
        raise ValueError(f"{what} {key!r} contains a character tables refuse (/ \\ # ? control)")
    return quote(key.replace("'", "''"), safe="")


def _check_table(name: str) -> str:
    if not _TABLE_NAME.match(name):
        raise ValueError(
            f"invalid table name {name!r}: 3-63 letters and digits, starting with a letter"
        )
    return name


def _keys(entity: Mapping[str, Any]) -> tuple[str, str]:
    try:
        return entity["PartitionKey"], entity["RowKey"]
    except KeyError as exc:
        raise ValueError(f"entity has no {exc.args[0]}") from None


# -------------------------------------------------------------------------------- service


class TableService:
    """Table operations for one account; cheap to create, shares the account's session."""

    def __init__(self, account: StorageAccount) -> None:
        self.account = account
        self._endpoint = account.settings.table_endpoint
        self._prefix = urlsplit(self._endpoint).path.rstrip("/")
        self._name = account.settings.account_name
        self._key = account.settings.account_key

    # -- plumbing

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        query: str = "",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        accept: str = _ACCEPT_NONE,
        idempotent: bool,
    ) -> Response:
        """``path`` is encoded and relative to the endpoint (``/mytable(...)``)."""
        full_path = self._prefix + path
        hdrs = {
            "x-ms-version": API_VERSION,
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
            "Accept": accept,
        }
        content_type = ""
        if body is not None:
            content_type = hdrs["Content-Type"] = (headers or {}).pop("Content-Type", _JSON)
        if headers:
            hdrs.update(headers)
        url = self._endpoint + path + (f"?{query}" if query else "")
        name, key = self._name, self._key

        def sign(h: Mapping[str, str]) -> str:
            return sign_table_shared_key(
                name, key, method, full_path, date=h["x-ms-date"], content_type=content_type
            )

        return await execute(
            self.account, operation, method, url, hdrs, body, sign, idempotent=idempotent
        )

    @staticmethod
    def _entity_path(table: str, pk: str, rk: str) -> str:
        return (
            f"/{_check_table(table)}(PartitionKey='{_quote_key(pk, 'PartitionKey')}',"
            f"RowKey='{_quote_key(rk, 'RowKey')}')"
        )

    # -- tables

    async def create_table(self, table: str) -> bool:
        """Create ``table``; return False (no error) when it already exists."""
        body = _dumps({"TableName": _check_table(table)})
        try:
            await self._call(
                "table.create_table",
                "POST",
                "/Tables",
                body=body,
                headers={"Prefer": "return-no-content"},
                idempotent=True,
            )
        except Conflict as exc:
            if exc.code == "TableAlreadyExists":
                return False
            raise
        return True

    async def delete_table(self, table: str) -> bool:
        """Delete ``table``; return False (no error) when it does not exist."""
        try:
            await self._call(
                "table.delete_table",
                "DELETE",
                f"/Tables('{_check_table(table)}')",
                idempotent=True,
            )
        except ResourceNotFound:
            return False
        return True

    # -- single entities

    async def get_entity(
        self, table: str, partition_key: str, row_key: str, select: Sequence[str] | None = None
    ) -> Entity | None:
        """The entity, or None when it (or the table) does not exist."""
        query = f"$select={quote(','.join(select), safe=',')}" if select else ""
        try:
            resp = await self._call(
                "table.get",
                "GET",
                self._entity_path(table, partition_key, row_key),
                query=query,
                accept=_ACCEPT_MINIMAL,
                idempotent=True,
            )
        except ResourceNotFound:
            return None
        return decode_entity(json.loads(resp.body), resp.headers.get("ETag"))

    async def insert(self, table: str, entity: Mapping[str, Any]) -> str:
        """Insert a new entity; return its ETag. Raises Conflict (EntityAlreadyExists)."""
        _keys(entity)
        resp = await self._call(
            "table.insert",
            "POST",
            f"/{_check_table(table)}",
            body=_dumps(encode_entity(entity)),
            headers={"Prefer": "return-no-content"},
            idempotent=False,
        )
        return resp.headers["ETag"]

    async def upsert(self, table: str, entity: Mapping[str, Any], mode: Mode = "merge") -> str:
        """Insert or merge / insert or replace, unconditionally; return the new ETag."""
        pk, rk = _keys(entity)
        resp = await self._call(
            "table.upsert",
            "PATCH" if mode == "merge" else "PUT",
            self._entity_path(table, pk, rk),
            body=_dumps(encode_entity(entity)),
            idempotent=True,
        )
        return resp.headers["ETag"]

    async def update(
        self,
        table: str,
        entity: Mapping[str, Any],
        etag: str | None = None,
        mode: Mode = "merge",
    ) -> str:
        """Update an existing entity if its ETag matches; return the new ETag.

        ``etag`` defaults to ``entity.etag`` for an `Entity`; ``"*"`` matches any version.
        Raises PreconditionFailed (412) on a stale ETag, ResourceNotFound when absent.
        """
        if etag is None:
            etag = getattr(entity, "etag", None)
            if etag is None:
                raise ValueError("update needs an etag (or '*' to match any version)")
        pk, rk = _keys(entity)
        resp = await self._call(
            "table.update",
            "PATCH" if mode == "merge" else "PUT",
            self._entity_path(table, pk, rk),
            body=_dumps(encode_entity(entity)),
            headers={"If-Match": etag},
            idempotent=etag == "*",
        )
        return resp.headers["ETag"]

    async def delete(
        self,
        table: str,
        partition_key: str,
        row_key: str,
        etag: str = "*",
        *,
        missing_ok: bool = False,
    ) -> bool:
        """Delete an entity if its ETag matches; False when absent and ``missing_ok``."""
        try:
            await self._call(
                "table.delete",
                "DELETE",
                self._entity_path(table, partition_key, row_key),
                headers={"If-Match": etag},
                idempotent=etag == "*",
            )
        except ResourceNotFound:
            if missing_ok:
                return False
            raise
        return True

    # -- queries

    async def query_page(
        self,
        table: str,
        filter: str | None = None,
        select: Sequence[str] | None = None,
        top: int | None = None,
        continuation: Continuation | None = None,
    ) -> tuple[list[Entity], Continuation | None]:
        """One page of a query (at most ``top``, and at most 1,000 by the service) and the
        continuation token for the next page, None when there is none."""
        params: list[str] = []
        if filter:
            params.append("$filter=" + quote(filter, safe=""))
        if select:
            fields = list(select)
            for required in ("PartitionKey", "RowKey"):
                if required not in fields:
                    fields.append(required)
            params.append("$select=" + quote(",".join(fields), safe=","))
        if top is not None:
            if top < 1:
                raise ValueError("top must be at least 1")
            params.append(f"$top={min(top, 1000)}")
        if continuation is not None:
            next_pk, next_rk = continuation
            params.append("NextPartitionKey=" + quote(next_pk, safe=""))
            if next_rk is not None:
                params.append("NextRowKey=" + quote(next_rk, safe=""))
        resp = await self._call(
            "table.query",
            "GET",
            f"/{_check_table(table)}()",
            query="&".join(params),
            accept=_ACCEPT_MINIMAL,
            idempotent=True,
        )
        doc = json.loads(resp.body)
        entities = [decode_entity(item) for item in doc.get("value", ())]
        more_pk = resp.headers.get("x-ms-continuation-NextPartitionKey")
        token: Continuation | None = None
        if more_pk is not None:
            token = (more_pk, resp.headers.get("x-ms-continuation-NextRowKey"))
        return entities, token

    async def query(
        self,
        table: str,
        filter: str | None = None,
        select: Sequence[str] | None = None,
        top: int | None = None,
    ) -> AsyncIterator[Entity]:
        """Every matching entity (at most ``top`` in all), following continuation tokens."""
        remaining = top
        token: Continuation | None = None
        while True:
            page, token = await self.query_page(table, filter, select, remaining, token)
            for entity in page:
                yield entity
            if remaining is not None:
                remaining -= len(page)
                if remaining <= 0:
                    return
            if token is None:
                return

    # -- entity group transactions

    async def submit_transaction(
        self, table: str, operations: Sequence[TableOperation]
    ) -> list[str | None]:
        """Run up to 100 operations on one partition atomically.

        Returns the new ETag of each operation, in order (None for deletes). On failure
        nothing is committed and `BatchError` says which operation failed (``index``), with
        its status and service code. Raises ValueError, before sending anything, for an
        empty list, more than 100 operations, mixed partitions, an entity named twice, or a
        payload over 4 MiB.
        """
        _check_table(table)
        count = len(operations)
        if count == 0:
            raise ValueError("a transaction needs at least one operation")
        if count > MAX_BATCH:
            raise ValueError(f"a transaction takes at most {MAX_BATCH} operations, got {count}")
        partition: str | None = None
        seen: set[str] = set()
        boundary_id = uuid.uuid4().hex
        batch_b = f"batch_{boundary_id}"
        change_b = f"changeset_{boundary_id}"
        parts: list[bytes] = [
            f"--{batch_b}\r\nContent-Type: multipart/mixed; boundary={change_b}\r\n\r\n".encode()
        ]
        for index, op in enumerate(operations):
            pk, rk = _keys(op.entity)
            if partition is None:
                partition = pk
            elif pk != partition:
                raise ValueError(
                    f"operation {index}: PartitionKey {pk!r} differs from {partition!r}; "
                    "a transaction covers one partition"
                )
            if rk in seen:
                raise ValueError(f"operation {index}: RowKey {rk!r} appears twice")
            seen.add(rk)
            payload: bytes | None = None
            extra = ""
            if op.kind == "insert":
                method, url = "POST", f"{self._endpoint}/{table}"
                payload = _dumps(encode_entity(op.entity))
            else:
                url = self._endpoint + self._entity_path(table, pk, rk)
                if op.kind == "delete":
                    method = "DELETE"
                else:
                    method = "PATCH" if op.mode == "merge" else "PUT"
                    payload = _dumps(encode_entity(op.entity))
                if op.kind in ("update", "delete"):
                    extra = f"If-Match: {op.etag or '*'}\r\n"
                elif op.kind != "upsert":
                    raise ValueError(f"operation {index}: unknown kind {op.kind!r}")
            head = (
                f"--{change_b}\r\nContent-Type: application/http\r\n"
                "Content-Transfer-Encoding: binary\r\n\r\n"
                f"{method} {url} HTTP/1.1\r\nContent-ID: {index + 1}\r\n"
                f"Accept: {_ACCEPT_NONE}\r\nPrefer: return-no-content\r\n"
                f"DataServiceVersion: 3.0\r\n{extra}"
            )
            if payload is not None:
                parts.append(
                    f"{head}Content-Type: {_JSON}\r\n"
                    f"Content-Length: {len(payload)}\r\n\r\n".encode()
                )
                parts.append(payload)
                parts.append(b"\r\n")
            else:
                parts.append(f"{head}\r\n".encode())
        parts.append(f"--{change_b}--\r\n--{batch_b}--\r\n".encode())
        body = b"".join(parts)
        if len(body) > MAX_BATCH_BYTES:
            raise ValueError(f"transaction payload is {len(body)} bytes, over the 4 MiB limit")
        resp = await self._call(
            "table.transaction",
            "POST",
            "/$batch",
            body=body,
            headers={"Content-Type": f"multipart/mixed; boundary={batch_b}"},
            accept=_ACCEPT_NONE,
            idempotent=False,
        )
        responses = _parse_batch_response(resp.body)
        failures = [(i, r) for i, r in enumerate(responses) if r.status >= 300]
        if failures or len(responses) != count:
            raise _batch_error(responses, failures, count)
        return [
            None if op.kind == "delete" else r.headers.get("etag")
            for op, r in zip(operations, responses, strict=True)
        ]


@dataclass(slots=True)
class _SubResponse:
    status: int
    headers: dict[str, str]
    body: bytes


_STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3})[^\r\n]*\r?$", re.MULTILINE)


def _parse_batch_response(body: bytes) -> list[_SubResponse]:
    """The sub-responses of a ``$batch`` reply, in order.

    Each is an HTTP status line, headers, a blank line and a body running to the next
    boundary line (``--...``); JSON bodies never start a line with ``--``.
    """
    out: list[_SubResponse] = []
    for match in _STATUS_LINE.finditer(body):
        pos = match.end() + 1
        headers: dict[str, str] = {}
        while pos < len(body):
            end = body.find(b"\n", pos)
            if end < 0:
                end = len(body)
            line = body[pos:end].rstrip(b"\r")
            pos = end + 1
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        stop = body.find(b"\n--", pos - 1)
        if stop < 0:
            stop = len(body)
        out.append(_SubResponse(int(match.group(1)), headers, body[pos:stop].strip()))
    return out


_INDEX_PREFIX = re.compile(r"^(\d+):")


def _batch_error(
    responses: list[_SubResponse], failures: list[tuple[int, _SubResponse]], count: int
) -> StorageError:
    if not failures:
        return StorageError(
            0,
            "UnparseableBatchResponse",
            f"expected {count} sub-responses, got {len(responses)}",
            "table.transaction",
        )
    position, failed = failures[0]
    code, message = parse_error_body(failed.body)
    index: int | None = None
    prefix = _INDEX_PREFIX.match(message)
    if prefix:
        index = int(prefix.group(1))
        message = message[prefix.end() :]
    elif failed.headers.get("content-id", "").isdigit():
        index = int(failed.headers["content-id"]) - 1
    elif len(responses) == count:
        index = position
    if index is not None and not 0 <= index < count:
        index = None
    message = message.split("\nRequestId:")[0].strip()
    return BatchError(failed.status, code, message, index)
