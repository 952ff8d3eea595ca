"""Protobuf <-> domain conversion, one module per area; no rules live here.

Shared helpers: timestamps and the enum maps other areas reuse.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp


def timestamp(value: datetime | None) -> Timestamp | None:
    """A protobuf Timestamp, or None (leaves the field unset) for no time."""
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts
