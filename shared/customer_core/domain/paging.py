"""Keyset paging: page sizes and opaque, signed page tokens.

A token carries the sort key of the last row returned and a fingerprint of the
query it belongs to, signed with HMAC-SHA256 under the service's key
(PAGE_TOKEN_KEY), so a client can neither forge a token nor edit one to skip
ahead or probe with odd values, and a token from one list cannot be replayed
against another. Anything else than an issued token for this query, whatever
it holds, is INVALID_ARGUMENT naming `page_token`; the sort key comes back
typed and checked against the shape the list declares.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from customer_core.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# Longer than any token this service issues (a time and a UUID), so a huge one is
# refused before it is decoded.
MAX_TOKEN_LENGTH = 512
_MAC_BYTES = 16
_INT64 = 2**63
_NOT_ISSUED = "is not a token this service issued"


class Part(Enum):
    """What one position of a sort key holds."""

    INT64 = "int64"
    UUID = "uuid"
    TIME = "time"  # an ISO 8601 time with its offset


def page_size(requested: int, field: str = "page_size") -> int:
    if requested < 0:
        raise InvalidArgument(field, f"must not be negative, got {requested}")
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def _fingerprint(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:12]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        # Only the one spelling we write: no second token for the same bytes.
        raise ValueError("not canonical base64")
    return data


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def encode_token(secret: bytes, query: str, key: Sequence[Any]) -> str:
    """A token resuming `query` after the row whose sort key is `key`, signed with `secret`."""
    payload = json.dumps(
        {"q": _fingerprint(query), "k": list(key)}, separators=(",", ":"), allow_nan=False
    ).encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, payload))}"


def decode_token(
    secret: bytes, query: str, token: str, shape: Sequence[Part], field: str = "page_token"
) -> tuple[Any, ...] | None:
    """The sort key a token resumes after, typed by `shape`, or None for the first page."""
    if not token:
        return None
    try:
        if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise ValueError("not a token")
        body, dot, mac = token.partition(".")
        payload = _unb64(body)
        if not dot or not hmac.compare_digest(_unb64(mac), _mac(secret, payload)):
            raise ValueError("not signed by this service")
        data = json.loads(payload)
        fingerprint, key = data["q"], data["k"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidArgument(field, _NOT_ISSUED) from None
    if fingerprint != _fingerprint(query):
        raise InvalidArgument(field, "belongs to a different list or filter")
    if not isinstance(key, list) or len(key) != len(shape):
        raise InvalidArgument(field, _NOT_ISSUED)
    try:
        return tuple(_typed(part, value) for part, value in zip(shape, key, strict=True))
    except (ValueError, TypeError):
        # Signed by us but not of this shape: an older version's token, say.
        raise InvalidArgument(field, _NOT_ISSUED) from None


def _typed(part: Part, value: object) -> object:
    if part is Part.INT64:
        if type(value) is not int or not -_INT64 <= value < _INT64:
            raise ValueError("not a 64-bit integer")
        return value
    if not isinstance(value, str):
        raise ValueError("not text")
    if part is Part.UUID:
        return uuid.UUID(value)
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise ValueError("no offset")
    return at
