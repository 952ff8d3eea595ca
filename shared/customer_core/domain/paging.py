"""Keyset paging: page sizes and opaque page tokens.

A token carries the sort key of the last row returned and a fingerprint of the
query it belongs to, so a token from one list cannot be replayed against
another (INVALID_ARGUMENT, naming `page_token`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from customer_core.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def page_size(requested: int, field: str = "page_size") -> int:
    if requested < 0:
        raise InvalidArgument(field, f"must not be negative, got {requested}")
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def _fingerprint(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:12]


def encode_token(query: str, key: Sequence[Any]) -> str:
    """An opaque token resuming `query` after the row whose sort key is `key`."""
    raw = json.dumps({"q": _fingerprint(query), "k": list(key)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(query: str, token: str, field: str = "page_token") -> list[Any] | None:
    """The sort key a token resumes after, or None for the first page."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key = data["k"]
        fingerprint = data["q"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidArgument(field, "is not a token this service issued") from None
    if fingerprint != _fingerprint(query) or not isinstance(key, list):
        raise InvalidArgument(field, "belongs to a different list or filter")
    return key
