"""The light storage transport against a real Azurite (no mocks).

Storage: the project-wide session fixture ``azurite`` from tests/conftest.py when it exists;
otherwise this module's own Azurite (tests/integration/transport_fixture.py).
"""

from __future__ import annotations

import asyncio
import base64
import math
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestration.azure import (
    BatchError,
    BlobService,
    Conflict,
    Entity,
    OutcomeUnknown,
    PreconditionFailed,
    QueueService,
    RequestTooLarge,
    ResourceNotFound,
    RetryPolicy,
    ServerBusy,
    StorageAccount,
    StorageError,
    TableOperation,
    TableService,
    parse_connection_string,
)
from orchestration.azure.signing import (
    sign_shared_key,
    sign_table_shared_key,
)
from orchestration.azure.tables import decode_entity, encode_entity
from tests.integration.transport_fixture import DEV_KEY
from tests.integration.transport_fixture import azurite as own_azurite

# Every test and async fixture shares the session's event loop: the account's aiohttp
# session belongs to the loop that created it.
aio = pytest.mark.asyncio(loop_scope="session")


def _name(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:12]


# ------------------------------------------------------------------ storage fixtures


@pytest.fixture(scope="session")
def conn_str(request: pytest.FixtureRequest) -> Iterator[str]:
    try:
        storage = request.getfixturevalue("azurite")  # tests/conftest.py's session Azurite
    except pytest.FixtureLookupError:
        storage = None
    if storage is not None and hasattr(storage, "connection_string"):
        yield storage.connection_string
        return
    with own_azurite() as conn:
        yield conn


@pytest.fixture
async def account(conn_str: str) -> AsyncIterator[StorageAccount]:
    async with StorageAccount.from_connection_string(conn_str) as acc:
        yield acc


@pytest.fixture
async def table(account: StorageAccount) -> AsyncIterator[tuple[TableService, str]]:
    svc = TableService(account)
    name = _name("t")
    assert await svc.create_table(name) is True
    yield svc, name
    await svc.delete_table(name)


@pytest.fixture
async def queue(account: StorageAccount) -> AsyncIterator[tuple[QueueService, str]]:
    svc = QueueService(account)
    name = _name("q-")
    assert await svc.create_queue(name) is True
    yield svc, name
    await svc.delete_queue(name)


# ------------------------------------------------------------------ unit: parsing, signing


def test_parse_development_storage() -> None:
    s = parse_connection_string("UseDevelopmentStorage=true")
    assert s.account_name == "devstoreaccount1"
    assert s.account_key == base64.b64decode(DEV_KEY)
    assert s.blob_endpoint == "http://127.0.0.1:10000/devstoreaccount1"
    assert s.queue_endpoint == "http://127.0.0.1:10001/devstoreaccount1"
    assert s.table_endpoint == "http://127.0.0.1:10002/devstoreaccount1"


def test_parse_real_azure_and_explicit_endpoints() -> None:
    key = base64.b64encode(b"k" * 64).decode()
    s = parse_connection_string(
        f"DefaultEndpointsProtocol=https;AccountName=x;AccountKey={key};"
        "EndpointSuffix=core.windows.net"
    )
    assert (s.account_name, s.account_key) == ("x", b"k" * 64)
    assert s.blob_endpoint == "https://x.blob.core.windows.net"
    assert s.queue_endpoint == "https://x.queue.core.windows.net"
    assert s.table_endpoint == "https://x.table.core.windows.net"
    s = parse_connection_string(
        f"accountname=y;accountkey={key};tableendpoint=http://127.0.0.1:9/y/;"
        "EndpointSuffix=core.chinacloudapi.cn;DefaultEndpointsProtocol=http"
    )
    assert s.table_endpoint == "http://127.0.0.1:9/y"
    assert s.queue_endpoint == "http://y.queue.core.chinacloudapi.cn"


@pytest.mark.parametrize(
    ("conn", "fragment"),
    [
        ("", "empty"),
        ("AccountName=x", "AccountKey"),
        ("AccountKey=abcd", "AccountName"),
        ("AccountName=x;AccountKey=not base64!", "base64"),
        ("AccountName=x;AccountKey=abcd;Garbage", "Key=Value"),
        ("SharedAccessSignature=sv=2020&sig=x;BlobEndpoint=https://a", "SAS"),
        ("AccountName=x;AccountKey=abcd;BlobEndpoint=ftp://a", "http"),
        ("AccountName=x;AccountKey=abcd;DefaultEndpointsProtocol=gopher", "http or https"),
        ("UseDevelopmentStorage=false", "true"),
    ],
)
def test_parse_errors(conn: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_connection_string(conn)


def test_signatures_match_the_azure_sdk() -> None:
    """Our Shared Key signatures equal the Azure SDK's own for fixed requests."""
    from azure.core.pipeline import PipelineContext, PipelineRequest
    from azure.core.rest import HttpRequest
    from azure.data.tables._authentication import SharedKeyCredentialPolicy as TablePolicy
    from azure.storage.queue._shared.authentication import (
        SharedKeyCredentialPolicy as QueuePolicy,
    )

    account, key = "devstoreaccount1", base64.b64decode(DEV_KEY)
    date = "Wed, 25 Nov 2026 12:00:00 GMT"

    # Queue: PUT with a body and query parameters (pop receipt with + / =).
    url = (
        "http://127.0.0.1:10001/devstoreaccount1/q1/messages/abc"
        "?popreceipt=AgAAAAMA%2BAAA%2FAAA%3D&visibilitytimeout=30"
    )
    headers = {
        "x-ms-version": "2021-08-06",
        "x-ms-date": date,
        "Content-Type": "application/xml",
        "Content-Length": "61",
    }
    req = HttpRequest("PUT", url, headers=dict(headers))
    QueuePolicy(account, DEV_KEY).on_request(PipelineRequest(req, PipelineContext(None)))
    ours = sign_shared_key(
        account,
        key,
        "PUT",
        "/devstoreaccount1/q1/messages/abc",
        [("popreceipt", "AgAAAAMA+AAA/AAA="), ("visibilitytimeout", "30")],
        headers,
    )
    assert ours == req.headers["Authorization"]

    # Table: an entity path with quotes, an x-ms-date and a JSON body.
    path = "/devstoreaccount1/t1(PartitionKey='a%20b',RowKey='c')"
    req = HttpRequest(
        "PATCH",
        "http://127.0.0.1:10002" + path,
        headers={"x-ms-date": date, "Content-Type": "application/json", "x-ms-version": "2019"},
    )
    TablePolicy(_Cred(account, DEV_KEY)).on_request(PipelineRequest(req, PipelineContext(None)))
    ours = sign_table_shared_key(
        account, key, "PATCH", path, date=date, content_type="application/json"
    )
    assert ours == req.headers["Authorization"]


class _Cred:
    """The shape azure-data-tables' signing policy expects of a credential."""

    def __init__(self, name: str, key: str) -> None:
        class _Named:
            pass

        self.named_key = _Named()
        self.named_key.name = name  # type: ignore[attr-defined]
        self.named_key.key = key  # type: ignore[attr-defined]


def test_edm_encoding_is_annotated() -> None:
    doc = encode_entity(
        {"PartitionKey": "p", "RowKey": "r", "i": 1, "l": 2**40, "f": 2.0, "n": None}
    )
    assert doc == {
        "PartitionKey": "p",
        "RowKey": "r",
        "i": 1,
        "l": str(2**40),
        "l@odata.type": "Edm.Int64",
        "f": 2.0,
        "f@odata.type": "Edm.Double",
    }
    back = decode_entity({**doc, "odata.etag": "W/x"})
    assert back == {"PartitionKey": "p", "RowKey": "r", "i": 1, "l": 2**40, "f": 2.0}
    assert back.etag == "W/x"


# ------------------------------------------------------------------ tables


@aio
async def test_bad_key_is_refused(conn_str: str) -> None:
    """Azurite really checks signatures (so the tests below prove ours are right)."""
    bad = conn_str.replace(DEV_KEY, base64.b64encode(b"x" * 64).decode())
    async with StorageAccount.from_connection_string(bad) as acc:
        with pytest.raises(StorageError) as info:
            await TableService(acc).create_table(_name("t"))
        assert info.value.status == 403
        with pytest.raises(StorageError) as info:
            await QueueService(acc).create_queue(_name("q-"))
        assert info.value.status == 403


@aio
async def test_entity_round_trip_every_edm_type(table: tuple[TableService, str]) -> None:
    svc, name = table
    when = datetime(2026, 11, 25, 12, 30, 1, 123456, tzinfo=UTC)
    entity: dict[str, Any] = {
        "PartitionKey": "p 'quoted' ü",
        "RowKey": "r%1+2&=",
        "text": 'héllo <xml> & "json" \n 𝄞',
        "empty": "",
        "small": -(2**31),
        "int32max": 2**31 - 1,
        "big": 2**31,
        "negbig": -(2**63),
        "float": 1.0,
        "pi": math.pi,
        "inf": math.inf,
        "yes": True,
        "no": False,
        "when": when,
        "naive": datetime(2020, 1, 1, 0, 0, 0),
        "bytes": bytes(range(256)),
        "guid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "long_text": "x" * 32_000,
    }
    etag = await svc.insert(name, entity)
    got = await svc.get_entity(name, entity["PartitionKey"], entity["RowKey"])
    assert got is not None
    assert isinstance(got, Entity)
    assert got.etag == etag
    assert got.timestamp is not None and got.timestamp.tzinfo is not None
    expected = {**entity, "naive": datetime(2020, 1, 1, tzinfo=UTC)}
    assert got == expected
    for key, value in expected.items():
        assert type(got[key]) is type(value), key
    assert got["when"].utcoffset() == timedelta(0)
    assert await svc.get_entity(name, "p", "absent") is None
    # select
    part = await svc.get_entity(name, entity["PartitionKey"], entity["RowKey"], select=["big"])
    assert part == {"big": 2**31}


@aio
async def test_conditional_update_and_insert_conflict(table: tuple[TableService, str]) -> None:
    svc, name = table
    first = await svc.insert(name, {"PartitionKey": "p", "RowKey": "r", "v": 1})
    with pytest.raises(Conflict) as info:
        await svc.insert(name, {"PartitionKey": "p", "RowKey": "r", "v": 2})
    assert (info.value.status, info.value.code) == (409, "EntityAlreadyExists")

    second = await svc.update(name, {"PartitionKey": "p", "RowKey": "r", "v": 2}, etag=first)
    assert second != first
    with pytest.raises(PreconditionFailed) as stale:
        await svc.update(name, {"PartitionKey": "p", "RowKey": "r", "v": 3}, etag=first)
    assert (stale.value.status, stale.value.code) == (412, "UpdateConditionNotSatisfied")
    got = await svc.get_entity(name, "p", "r")
    assert got is not None and got["v"] == 2
    got["v"] = 3
    third = await svc.update(name, got, mode="replace")  # etag taken from the entity
    assert third != second
    await svc.update(name, {"PartitionKey": "p", "RowKey": "r", "w": 1}, etag="*")
    got = await svc.get_entity(name, "p", "r")
    assert got == {"PartitionKey": "p", "RowKey": "r", "v": 3, "w": 1}  # merged

    with pytest.raises(ResourceNotFound):
        await svc.update(name, {"PartitionKey": "p", "RowKey": "nope"}, etag="*")
    with pytest.raises(PreconditionFailed):
        await svc.delete(name, "p", "r", etag=first)
    assert await svc.delete(name, "p", "r", etag=got.etag or "*") is True
    assert await svc.delete(name, "p", "r", missing_ok=True) is False
    with pytest.raises(ResourceNotFound):
        await svc.delete(name, "p", "r")


@aio
async def test_size_limits_raise_request_too_large(
    table: tuple[TableService, str], queue: tuple[QueueService, str]
) -> None:
    svc, name = table
    with pytest.raises(RequestTooLarge) as info:
        await svc.upsert(name, {"PartitionKey": "p", "RowKey": "r", "s": "x" * 32_769})
    assert (info.value.status, info.value.code) == (400, "PropertyValueTooLarge")
    big = {f"s{i}": "x" * 30_000 for i in range(40)}
    with pytest.raises(RequestTooLarge) as info:
        await svc.upsert(name, {"PartitionKey": "p", "RowKey": "r", **big})
    assert (info.value.status, info.value.code) == (400, "EntityTooLarge")
    qsvc, qname = queue
    await qsvc.send(qname, "x" * 65_536)
    with pytest.raises(ValueError, match="64 KiB"):
        await qsvc.send(qname, "x" * 65_537)


@aio
async def test_upsert_modes(table: tuple[TableService, str]) -> None:
    svc, name = table
    await svc.upsert(name, {"PartitionKey": "p", "RowKey": "r", "a": 1})
    await svc.upsert(name, {"PartitionKey": "p", "RowKey": "r", "b": 2}, mode="merge")
    assert await svc.get_entity(name, "p", "r") == {
        "PartitionKey": "p",
        "RowKey": "r",
        "a": 1,
        "b": 2,
    }
    await svc.upsert(name, {"PartitionKey": "p", "RowKey": "r", "c": 3}, mode="replace")
    assert await svc.get_entity(name, "p", "r") == {"PartitionKey": "p", "RowKey": "r", "c": 3}


@aio
async def test_create_and_delete_table_are_idempotent(account: StorageAccount) -> None:
    svc = TableService(account)
    name = _name("t")
    assert await svc.create_table(name) is True
    assert await svc.create_table(name) is False
    assert await svc.delete_table(name) is True
    assert await svc.delete_table(name) is False
    with pytest.raises(ValueError):
        await svc.create_table("bad-name")


@aio
async def test_transaction_of_100_commits_atomically(table: tuple[TableService, str]) -> None:
    svc, name = table
    await svc.insert(name, {"PartitionKey": "p", "RowKey": "u", "v": 0})
    current = await svc.get_entity(name, "p", "u")
    assert current is not None
    await svc.insert(name, {"PartitionKey": "p", "RowKey": "d", "v": 0})
    ops = [
        TableOperation.insert({"PartitionKey": "p", "RowKey": f"i{i:03d}", "v": i})
        for i in range(96)
    ]
    ops.append(TableOperation.upsert({"PartitionKey": "p", "RowKey": "m", "v": 1}, mode="merge"))
    ops.append(TableOperation.upsert({"PartitionKey": "p", "RowKey": "x", "v": 1}, mode="replace"))
    ops.append(TableOperation.update({**current, "v": 1}, etag=current.etag))
    ops.append(TableOperation.delete("p", "d", etag="*"))
    assert len(ops) == 100
    etags = await svc.submit_transaction(name, ops)
    assert len(etags) == 100
    assert all(isinstance(e, str) and e.startswith('W/"') for e in etags[:99])
    assert etags[99] is None
    rows = [e async for e in svc.query(name, filter="PartitionKey eq 'p'")]
    assert len(rows) == 96 + 3
    by_key = {r["RowKey"]: r for r in rows}
    assert by_key["u"]["v"] == 1 and by_key["u"].etag == etags[98]
    assert by_key["i042"].etag == etags[42]
    assert "d" not in by_key


@aio
async def test_failed_transaction_commits_nothing_and_names_the_operation(
    table: tuple[TableService, str],
) -> None:
    svc, name = table
    await svc.insert(name, {"PartitionKey": "p", "RowKey": "taken"})
    ops = [TableOperation.insert({"PartitionKey": "p", "RowKey": f"n{i:03d}"}) for i in range(100)]
    ops[56] = TableOperation.insert({"PartitionKey": "p", "RowKey": "taken"})
    with pytest.raises(BatchError) as info:
        await svc.submit_transaction(name, ops)
    err = info.value
    assert (err.index, err.status, err.code) == (56, 409, "EntityAlreadyExists")
    rows = [e async for e in svc.query(name)]
    assert [r["RowKey"] for r in rows] == ["taken"]

    # a stale ETag inside a batch: 412, index reported, nothing written
    first = await svc.upsert(name, {"PartitionKey": "p", "RowKey": "e", "v": 1})
    await svc.upsert(name, {"PartitionKey": "p", "RowKey": "e", "v": 2})
    ops = [
        TableOperation.insert({"PartitionKey": "p", "RowKey": "a"}),
        TableOperation.update({"PartitionKey": "p", "RowKey": "e", "v": 3}, etag=first),
    ]
    with pytest.raises(BatchError) as info:
        await svc.submit_transaction(name, ops)
    assert (info.value.index, info.value.status) == (1, 412)
    assert info.value.code == "UpdateConditionNotSatisfied"
    assert await svc.get_entity(name, "p", "a") is None


@aio
async def test_transaction_is_validated_before_sending(
    table: tuple[TableService, str], account: StorageAccount
) -> None:
    svc, name = table
    before = dict(account.stats)
    too_many = [TableOperation.insert({"PartitionKey": "p", "RowKey": str(i)}) for i in range(101)]
    with pytest.raises(ValueError, match="at most 100"):
        await svc.submit_transaction(name, too_many)
    mixed = [
        TableOperation.insert({"PartitionKey": "p", "RowKey": "1"}),
        TableOperation.insert({"PartitionKey": "q", "RowKey": "2"}),
    ]
    with pytest.raises(ValueError, match="one partition"):
        await svc.submit_transaction(name, mixed)
    twice = [TableOperation.insert({"PartitionKey": "p", "RowKey": "1"})] * 2
    with pytest.raises(ValueError, match="twice"):
        await svc.submit_transaction(name, twice)
    with pytest.raises(ValueError):
        await svc.submit_transaction(name, [])
    assert account.stats == before  # nothing was sent


@aio
async def test_query_filter_select_and_continuation(
    table: tuple[TableService, str], account: StorageAccount
) -> None:
    svc, name = table
    for chunk in range(12):  # 1,200 entities in 12 batches of 100
        await svc.submit_transaction(
            name,
            [
                TableOperation.insert(
                    {"PartitionKey": "p", "RowKey": f"{chunk * 100 + i:05d}", "n": chunk * 100 + i}
                )
                for i in range(100)
            ],
        )
    page, token = await svc.query_page(name)
    assert len(page) == 1000  # Azurite's (and Azure's) page size
    assert token is not None  # opaque: Azurite base64-encodes the next keys
    page2, token2 = await svc.query_page(name, continuation=token)
    assert len(page2) == 200 and token2 is None
    assert page2[0]["n"] == 1000

    before = account.stats.get("table.query", 0)
    everything = [e async for e in svc.query(name, filter="PartitionKey eq 'p'")]
    assert [e["n"] for e in everything] == list(range(1200))
    assert account.stats["table.query"] - before == 2

    odd = [e async for e in svc.query(name, filter="n ge 995 and n lt 1003", select=["n"])]
    assert [e["n"] for e in odd] == list(range(995, 1003))
    assert set(odd[0]) == {"PartitionKey", "RowKey", "n"}

    limited = [e async for e in svc.query(name, top=5)]
    assert len(limited) == 5
    small_pages, tok = await svc.query_page(name, top=7)
    assert len(small_pages) == 7 and tok is not None


# ------------------------------------------------------------------ queues


@aio
async def test_queue_send_receive_delete(queue: tuple[QueueService, str]) -> None:
    svc, name = queue
    sent = await svc.send(name, "hello")
    assert sent.id and sent.pop_receipt
    assert await svc.approximate_count(name) == 1
    (msg,) = await svc.receive(name, max_messages=32, visibility_timeout=30)
    assert (msg.id, msg.text, msg.dequeue_count) == (sent.id, "hello", 1)
    assert msg.next_visible_time is not None and msg.next_visible_time > msg.insertion_time
    assert await svc.receive(name) == []  # invisible now
    await svc.delete(name, msg.id, msg.pop_receipt)
    assert await svc.approximate_count(name) == 0
    with pytest.raises(ResourceNotFound) as info:
        await svc.delete(name, msg.id, msg.pop_receipt)
    assert info.value.code == "MessageNotFound"


@aio
async def test_visibility_timeout_is_honoured(queue: tuple[QueueService, str]) -> None:
    svc, name = queue
    await svc.send(name, "m")
    (first,) = await svc.receive(name, visibility_timeout=1)
    assert await svc.receive(name) == []
    await asyncio.sleep(2.2)
    (again,) = await svc.receive(name, visibility_timeout=30)
    assert again.id == first.id and again.dequeue_count == 2
    with pytest.raises(StorageError) as stale:  # the first pop receipt is stale now
        await svc.delete(name, first.id, first.pop_receipt)
    assert (stale.value.status, stale.value.code) == (400, "PopReceiptMismatch")

    # update_visibility: make it visible now with new text, via the new pop receipt
    receipt = await svc.update_visibility(name, again.id, again.pop_receipt, 0, text="changed")
    assert receipt != again.pop_receipt
    peeked = await svc.peek(name)
    assert [(m.id, m.text, m.pop_receipt) for m in peeked] == [(again.id, "changed", "")]
    (third,) = await svc.receive(name)
    assert (third.text, third.dequeue_count) == ("changed", 3)
    # and hide it again without changing text
    receipt = await svc.update_visibility(name, third.id, third.pop_receipt, 60)
    assert await svc.receive(name) == []
    await svc.delete(name, third.id, receipt)


@aio
async def test_delayed_send_and_clear(queue: tuple[QueueService, str]) -> None:
    svc, name = queue
    await svc.send(name, "later", visibility_timeout=60, ttl=3600)
    await svc.send(name, "never-expires", ttl=-1)
    assert await svc.approximate_count(name) == 2
    (now,) = await svc.receive(name)
    assert now.text == "never-expires"
    assert now.expiration_time.year == 9999
    await svc.clear(name)
    assert await svc.approximate_count(name) == 0


@aio
async def test_special_characters_round_trip(queue: tuple[QueueService, str]) -> None:
    svc, name = queue
    texts = [
        '<tag attr="x">&amp; & \' </tag>',
        "]]> <![CDATA[ x ]]>",
        "line1\r\nline2\rline3\n\ttab",
        "ünïcödé € 漢字 🎉 𝄞",
        base64.b64encode(b'{"json": true}').decode(),
        " leading and trailing spaces ",
    ]
    for text in texts:
        await svc.send(name, text)
    got = await svc.receive(name, max_messages=32)
    assert sorted(m.text for m in got) == sorted(texts)
    with pytest.raises(ValueError, match="base64"):
        await svc.send(name, "bad \x00 char")


@aio
async def test_list_queues_and_idempotent_create(account: StorageAccount) -> None:
    svc = QueueService(account)
    prefix = _name("lq-")
    names = [f"{prefix}-{i}" for i in range(3)]
    for n in names:
        assert await svc.create_queue(n) is True
    assert await svc.create_queue(names[0]) is False
    assert await svc.list_queues(prefix) == names
    for n in names:
        assert await svc.delete_queue(n) is True
    assert await svc.delete_queue(names[0]) is False
    with pytest.raises(ValueError):
        await svc.create_queue("Bad_Name")


# ------------------------------------------------------------------ blobs


@aio
async def test_blob_round_trip(account: StorageAccount) -> None:
    svc = BlobService(account)
    container = _name("c-")
    assert await svc.create_container(container) is True
    assert await svc.create_container(container) is False
    data = uuid.uuid4().bytes * (2 * 1024 * 1024 // 16)  # 2 MiB
    blob = "payloads/inst 1/ünï+%.bin"
    etag = await svc.upload(container, blob, data, content_type="application/x-test")
    assert etag
    assert await svc.download(container, blob) == data
    with pytest.raises(Conflict) as exists:
        await svc.upload(container, blob, b"x", overwrite=False)
    assert exists.value.code == "BlobAlreadyExists"
    await svc.upload(container, "payloads/other", b"")
    assert await svc.download(container, "payloads/other") == b""
    listed = await svc.list(container, prefix="payloads/")
    assert [(b.name, b.size) for b in listed] == [
        ("payloads/inst 1/ünï+%.bin", len(data)),
        ("payloads/other", 0),
    ]
    assert listed[0].content_type == "application/x-test"
    with pytest.raises(ResourceNotFound) as missing:
        await svc.download(container, "absent")
    assert (missing.value.status, missing.value.code) == (404, "BlobNotFound")
    assert await svc.delete(container, blob) is True
    assert await svc.delete(container, blob, missing_ok=True) is False
    with pytest.raises(ResourceNotFound):
        await svc.delete(container, blob)
    assert await svc.delete_container(container) is True


@aio
async def test_concurrent_calls_share_one_session(table: tuple[TableService, str]) -> None:
    svc, name = table
    before = svc.account.stats.get("table.upsert", 0)
    etags = await asyncio.gather(
        *(svc.upsert(name, {"PartitionKey": "c", "RowKey": f"{i:03d}", "v": i}) for i in range(200))
    )
    assert len(set(etags)) == 200
    assert svc.account.stats["table.upsert"] - before == 200
    rows = [e async for e in svc.query(name, filter="PartitionKey eq 'c'")]
    assert sorted(r["v"] for r in rows) == list(range(200))


@aio
async def test_stats_and_session_reuse(conn_str: str) -> None:
    async with StorageAccount.from_connection_string(conn_str) as acc:
        q = QueueService(acc)
        name = _name("s-")
        await q.create_queue(name)
        session = acc.session()
        for _ in range(3):
            await q.send(name, "x")
        assert acc.session() is session
        await q.delete_queue(name)
        assert acc.stats == {"queue.create_queue": 1, "queue.send": 3, "queue.delete_queue": 1}
        assert acc.reset_stats()["queue.send"] == 3 and acc.stats == {}
    assert session.closed


# ------------------------------------------------------------------ retry policy
# Azurite cannot be made to drop a connection or answer 503 on demand, so these few tests
# talk to a tiny local HTTP server that misbehaves on purpose (a real socket, no mocks).


class _Misbehaving:
    """Answers each request per ``script`` ("drop": close without replying, or a status)."""

    def __init__(self, script: list[str | int]) -> None:
        self.script = script
        self.hits = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        key = DEV_KEY
        return (
            f"AccountName=devstoreaccount1;AccountKey={key};"
            f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
            f"QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
            f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1"
        )

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                step = self.script[min(self.hits, len(self.script) - 1)]
                self.hits += 1
                if step == "drop":
                    writer.close()
                    return
                body = b""
                if int(step) >= 400:
                    body = b'{"odata.error":{"code":"ServerBusy","message":{"value":"busy"}}}'
                writer.write(
                    f"HTTP/1.1 {step} X\r\nContent-Length: {len(body)}\r\n"
                    f'ETag: W/"e{self.hits}"\r\n\r\n'.encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


_FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)


@aio
async def test_no_blind_retry_of_a_write_without_answer() -> None:
    fake = _Misbehaving(["drop"])
    async with fake as conn, StorageAccount.from_connection_string(conn, retry=_FAST) as acc:
        svc = TableService(acc)
        with pytest.raises(OutcomeUnknown):
            await svc.insert("tbl", {"PartitionKey": "p", "RowKey": "r"})
        assert fake.hits == 1
        with pytest.raises(OutcomeUnknown):
            await svc.update("tbl", {"PartitionKey": "p", "RowKey": "r"}, etag='W/"x"')
        assert fake.hits == 2
        # a conditional PUT / DELETE is not re-sent either (aiohttp's own retry is off)
        with pytest.raises(OutcomeUnknown):
            await svc.update("tbl", {"PartitionKey": "p", "RowKey": "r"}, 'W/"x"', "replace")
        with pytest.raises(OutcomeUnknown):
            await svc.delete("tbl", "p", "r", etag='W/"x"')
        assert fake.hits == 4
        # an idempotent read is retried, then fails plainly
        with pytest.raises(StorageError) as info:
            await svc.get_entity("tbl", "p", "r")
        assert info.value.status == 0 and not isinstance(info.value, OutcomeUnknown)
        assert fake.hits == 8 and acc.stats["retry"] == 3


@aio
async def test_503_is_retried_and_500_only_when_idempotent() -> None:
    fake = _Misbehaving([503, 204])
    async with fake as conn, StorageAccount.from_connection_string(conn, retry=_FAST) as acc:
        svc = TableService(acc)
        assert await svc.insert("tbl", {"PartitionKey": "p", "RowKey": "r"}) == 'W/"e2"'
        assert fake.hits == 2
    fake = _Misbehaving([500, 204])
    async with fake as conn, StorageAccount.from_connection_string(conn, retry=_FAST) as acc:
        svc = TableService(acc)
        with pytest.raises(ServerBusy):
            await svc.insert("tbl", {"PartitionKey": "p", "RowKey": "r"})
        assert fake.hits == 1
        assert await svc.upsert("tbl", {"PartitionKey": "p", "RowKey": "r"}) == 'W/"e2"'
        assert fake.hits == 2


@aio
async def test_connection_refused_is_retried_then_reported() -> None:
    fake = _Misbehaving([204])
    async with fake as conn:
        pass  # the port is closed again now
    async with StorageAccount.from_connection_string(conn, retry=_FAST) as acc:
        with pytest.raises(StorageError) as info:
            await TableService(acc).insert("tbl", {"PartitionKey": "p", "RowKey": "r"})
        assert (info.value.status, info.value.code) == (0, "ConnectionError")
        assert acc.stats == {"table.insert": 1, "retry": 3}
