"""Data clean-up: archive old order history, prune the inbox, purge personal data.

Each statement handles one batch and returns how many rows it touched; the use
case loops until a batch comes back short.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from customer_core.db import Conn

_HISTORY_COLUMNS = """order_id, customer_id, family_id, placed_at, completed_at, cancelled_at,
    items, currency_code, total_minor, paid_minor, points_earned, create_time, update_time,
    payment_ids, cancel_reason"""

# An order is old once its last event is: an open order is never archived.
ARCHIVE_HISTORY = f"""
WITH old AS (
    SELECT order_id FROM order_history
    WHERE greatest(placed_at, completed_at, cancelled_at, create_time) < $1
    ORDER BY order_id LIMIT $2
    FOR UPDATE SKIP LOCKED
), moved AS (
    DELETE FROM order_history h USING old WHERE h.order_id = old.order_id
    RETURNING {", ".join("h." + c.strip() for c in _HISTORY_COLUMNS.split(","))}
)
INSERT INTO order_history_archive ({_HISTORY_COLUMNS})
SELECT {_HISTORY_COLUMNS} FROM moved
ON CONFLICT (order_id) DO UPDATE SET
    {", ".join(f"{c.strip()} = EXCLUDED.{c.strip()}" for c in _HISTORY_COLUMNS.split(",")[1:])},
    archived_at = now()
"""
PRUNE_INBOX = """
DELETE FROM processed_events WHERE event_id IN (
    SELECT event_id FROM processed_events WHERE processed_at < $1 LIMIT $2
)
"""
# Personal data of the profile row goes (the rest: usecases.erasure, in the same
# transaction); ids, the ledger, statistics and the family link stay.
PURGE_CUSTOMERS = """
WITH due AS (
    SELECT id FROM customers
    WHERE deleted_at < $1 AND purged_at IS NULL
    ORDER BY id LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE customers c SET
    username = NULL, display_name = NULL, email = NULL, external_id = NULL,
    preferences = '{}'::jsonb, dietary_restrictions = '{}', allergies = '{}',
    purged_at = now(), update_time = now()
FROM due WHERE c.id = due.id
RETURNING c.id, c.family_id
"""


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def archive_history(conn: Conn, before: datetime, limit: int) -> int:
    return _count(await conn.execute(ARCHIVE_HISTORY, before, limit))


async def prune_inbox(conn: Conn, before: datetime, limit: int) -> int:
    return _count(await conn.execute(PRUNE_INBOX, before, limit))


async def purge_customers(
    conn: Conn, before: datetime, limit: int
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Purge up to `limit` customers deleted before `before`; their (id, family id)."""
    rows = await conn.fetch(PURGE_CUSTOMERS, before, limit)
    return [(r["id"], r["family_id"]) for r in rows]
