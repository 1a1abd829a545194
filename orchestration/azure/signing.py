"""Shared Key authorization, as "Authorize with Shared Key" (Azure Storage REST) documents it.

Blob and Queue use **Shared Key** (the 2009-09-19+ string-to-sign: verb, twelve standard
headers, canonicalized ``x-ms-*`` headers, canonicalized resource with every query parameter).

Table uses **Shared Key for the Table service** (the docs accept it and Shared Key Lite for
tables; the Azure SDK uses this one): ``VERB\\nContent-MD5\\nContent-Type\\nDate\\n`` +
canonicalized resource, where the resource keeps only ``?comp=``. We always send ``x-ms-date``
and put its value in the Date slot, so the signature covers it. Shared Key Lite for tables
(``Date\\nresource``) is provided too.

The canonicalized resource is ``/<account>`` + the request's URI path *as sent* (encoded).
With path-style endpoints (the emulator, Azurite) the path already starts with the account,
so the account appears twice: ``/devstoreaccount1/devstoreaccount1/mytable`` -- the emulator
rule in the docs, with no special case needed here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from email.utils import formatdate

# Standard headers of the Blob/Queue string-to-sign, in order (Date is left empty: we sign
# x-ms-date, which the docs say to do when x-ms-date is sent).
_STANDARD_HEADERS = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)

_date_cache: tuple[int, str] = (0, "")


def rfc1123_now() -> str:
    """The current time as an RFC 1123 date (cached per second: it is on every request)."""
    global _date_cache
    now = int(time.time())
    cached_at, text = _date_cache
    if cached_at != now:
        text = formatdate(now, usegmt=True)
        _date_cache = (now, text)
    return text


def _hmac_b64(key: bytes, string_to_sign: str) -> str:
    digest = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def canonicalized_headers(headers: Mapping[str, str]) -> str:
    """``x-ms-*`` headers, lower-cased, sorted, one ``name:value\\n`` each."""
    items = sorted((k.lower(), v.strip()) for k, v in headers.items() if k[:5].lower() == "x-ms-")
    return "".join(f"{k}:{v}\n" for k, v in items)


def canonicalized_resource(
    account: str, encoded_path: str, query: Iterable[tuple[str, str]] = ()
) -> str:
    """Blob/Queue canonicalized resource: path plus every query parameter (decoded values)."""
    resource = f"/{account}{encoded_path or '/'}"
    grouped: dict[str, list[str]] = {}
    for name, value in query:
        grouped.setdefault(name.lower(), []).append(value)
    for name in sorted(grouped):
        resource += f"\n{name}:{','.join(sorted(grouped[name]))}"
    return resource


def shared_key_string_to_sign(
    method: str,
    account: str,
    encoded_path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
) -> str:
    """The Blob/Queue Shared Key string-to-sign. ``headers`` are the headers as sent."""
    lowered = {k.lower(): v for k, v in headers.items()}
    values = []
    for name in _STANDARD_HEADERS:
        value = lowered.get(name, "")
        if name == "content-length" and value == "0":
            value = ""  # version 2015-02-21 and later: zero length signs as empty
        values.append(value)
    return (
        method.upper()
        + "\n"
        + "\n".join(values)
        + "\n"
        + canonicalized_headers(headers)
        + canonicalized_resource(account, encoded_path, query)
    )


def sign_shared_key(
    account: str,
    key: bytes,
    method: str,
    encoded_path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
) -> str:
    """The ``Authorization`` header value for a Blob or Queue request."""
    sts = shared_key_string_to_sign(method, account, encoded_path, query, headers)
    return f"SharedKey {account}:{_hmac_b64(key, sts)}"


def table_canonicalized_resource(account: str, encoded_path: str, comp: str | None = None) -> str:
    resource = f"/{account}{encoded_path or '/'}"
    if comp is not None:
        resource += f"?comp={comp}"
    return resource


def table_string_to_sign(
    method: str,
    account: str,
    encoded_path: str,
    *,
    date: str,
    content_type: str = "",
    content_md5: str = "",
    comp: str | None = None,
) -> str:
    return (
        f"{method.upper()}\n{content_md5}\n{content_type}\n{date}\n"
        + table_canonicalized_resource(account, encoded_path, comp)
    )


def sign_table_shared_key(
    account: str,
    key: bytes,
    method: str,
    encoded_path: str,
    *,
    date: str,
    content_type: str = "",
    content_md5: str = "",
    comp: str | None = None,
) -> str:
    """``SharedKey`` authorization for the Table service; ``date`` is the x-ms-date sent."""
    sts = table_string_to_sign(
        method,
        account,
        encoded_path,
        date=date,
        content_type=content_type,
        content_md5=content_md5,
        comp=comp,
    )
    return f"SharedKey {account}:{_hmac_b64(key, sts)}"


def sign_table_shared_key_lite(
    account: str, key: bytes, encoded_path: str, *, date: str, comp: str | None = None
) -> str:
    """``SharedKeyLite`` authorization for the Table service (``date`` = x-ms-date sent)."""
    sts = f"{date}\n" + table_canonicalized_resource(account, encoded_path, comp)
    return f"SharedKeyLite {account}:{_hmac_b64(key, sts)}"
