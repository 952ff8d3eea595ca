"""Idempotency records (table `idempotency_keys`): plain SQL over one connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from customer_core.db import Conn

# Serialises callers of one key until the holder's transaction ends; the lock
# space is shared, so a hash collision only makes two unrelated keys wait.
LOCK_KEY = "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))"

SELECT = "SELECT method, request_hash, response FROM idempotency_keys WHERE key = $1"

INSERT = """
INSERT INTO idempotency_keys (key, method, request_hash, response)
VALUES ($1, $2, $3, $4)
"""

DELETE_OLDER_THAN = "DELETE FROM idempotency_keys WHERE create_time < $1"


@dataclass(frozen=True)
class StoredCall:
    method: str
    request_hash: str
    response: bytes


async def lock_key(conn: Conn, key: str) -> None:
    """Hold the key's lock until the current transaction ends."""
    await conn.execute(LOCK_KEY, key)


async def fetch_call(conn: Conn, key: str) -> StoredCall | None:
    row = await conn.fetchrow(SELECT, key)
    if row is None:
        return None
    return StoredCall(row["method"], row["request_hash"], bytes(row["response"]))


async def insert_call(conn: Conn, key: str, call: StoredCall) -> None:
    await conn.execute(INSERT, key, call.method, call.request_hash, call.response)


async def delete_older_than(conn: Conn, cutoff: datetime) -> int:
    """Forget keys recorded before `cutoff`; returns how many went."""
    status = await conn.execute(DELETE_OLDER_THAN, cutoff)
    return int(status.rsplit(" ", 1)[-1])
