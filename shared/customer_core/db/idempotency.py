"""Idempotency records (table `idempotency_keys`): plain SQL over one connection."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from customer_core.db import Conn

# Serialises callers of one key until the holder's transaction ends; the lock
# space is shared, so a hash collision only makes two unrelated keys wait.
LOCK_KEY = "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))"

SELECT = """
SELECT method, request_hash, response, customer_id, family_id
FROM idempotency_keys WHERE key = $1
"""

INSERT = """
INSERT INTO idempotency_keys (key, method, request_hash, response, customer_id, family_id)
VALUES ($1, $2, $3, $4, $5, $6)
"""

DELETE_OLDER_THAN = "DELETE FROM idempotency_keys WHERE create_time < $1"

# Erasure: the responses of the named methods become the given (redacted) ones,
# every other response about the customer goes. Key, method and digest stay.
REWRITE_CUSTOMER = """
UPDATE idempotency_keys k SET response = w.response, erased_at = now()
FROM unnest($2::text[], $3::bytea[]) AS w(method, response)
WHERE k.customer_id = ANY($1::uuid[]) AND k.method = w.method
"""
CLEAR_CUSTOMER = """
UPDATE idempotency_keys SET response = NULL, erased_at = now()
WHERE customer_id = ANY($1::uuid[]) AND method <> ALL($2::text[]) AND response IS NOT NULL
"""
# A family's own responses (none about one member), once its last member is erased.
REWRITE_FAMILY = """
UPDATE idempotency_keys k SET response = w.response, erased_at = now()
FROM unnest($2::text[], $3::bytea[]) AS w(method, response)
WHERE k.family_id = $1 AND k.customer_id IS NULL AND k.method = w.method
"""
CLEAR_FAMILY = """
UPDATE idempotency_keys SET response = NULL, erased_at = now()
WHERE family_id = $1 AND customer_id IS NULL AND method <> ALL($2::text[])
  AND response IS NOT NULL
"""


@dataclass(frozen=True)
class StoredCall:
    method: str
    request_hash: str
    # None once erasure cleared it: a replay answers NOT_FOUND for the owner.
    response: bytes | None
    customer_id: uuid.UUID | None = None
    family_id: uuid.UUID | None = None


async def lock_key(conn: Conn, key: str) -> None:
    """Hold the key's lock until the current transaction ends."""
    await conn.execute(LOCK_KEY, key)


async def fetch_call(conn: Conn, key: str) -> StoredCall | None:
    row = await conn.fetchrow(SELECT, key)
    if row is None:
        return None
    response = row["response"]
    return StoredCall(
        row["method"],
        row["request_hash"],
        None if response is None else bytes(response),
        row["customer_id"],
        row["family_id"],
    )


async def insert_call(conn: Conn, key: str, call: StoredCall) -> None:
    await conn.execute(
        INSERT,
        key,
        call.method,
        call.request_hash,
        call.response,
        call.customer_id,
        call.family_id,
    )


async def delete_older_than(conn: Conn, cutoff: datetime) -> int:
    """Forget keys recorded before `cutoff`; returns how many went."""
    status = await conn.execute(DELETE_OLDER_THAN, cutoff)
    return int(status.rsplit(" ", 1)[-1])


async def erase_customers(conn: Conn, rewrite: Mapping[uuid.UUID, Mapping[str, bytes]]) -> None:
    """Redact every stored response about these customers: `rewrite[id][method]` replaces
    that method's responses, the others are cleared."""
    for cid, by_method in rewrite.items():
        await conn.execute(REWRITE_CUSTOMER, [cid], list(by_method), list(by_method.values()))
        await conn.execute(CLEAR_CUSTOMER, [cid], list(by_method))


async def erase_family(conn: Conn, family_id: uuid.UUID, rewrite: Mapping[str, bytes]) -> None:
    """Redact the family's own stored responses, as erase_customers does."""
    await conn.execute(REWRITE_FAMILY, family_id, list(rewrite), list(rewrite.values()))
    await conn.execute(CLEAR_FAMILY, family_id, list(rewrite))
