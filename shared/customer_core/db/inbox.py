"""The consumer's reads and its inbox: members and their locks, orders, inbox rows.

Every statement takes whole arrays (one round trip per table per batch), and
rows are written in key order so that two consumers never wait on each other
in opposite orders.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from customer_core.db import Conn
from customer_core.domain.order_events import Item, OrderState


@dataclass(frozen=True)
class Member:
    customer_id: uuid.UUID
    family_id: uuid.UUID


# The customers that exist, with their families, and a transaction-scoped lock
# per customer taken in key order (before any row comes back: the join needs
# the one-row aggregate). Two group members can hold events of one customer
# (an order's events travel on different topics, whose partitions different
# members own): the lock serialises them, since a customer's statistics and
# orders are read, folded and written back. A pooled wallet shared by members
# in both batches needs no lock of its own: its account row is locked FOR
# UPDATE, in id order, before its balance is read. It used to be one lock per
# family, which serialised two consumers on the skewed load's hot families
# (43% of their time waiting; bench/consumer.py --consumers 2).
LOCK_MEMBERS = """
WITH m AS (SELECT id, family_id FROM customers WHERE id = ANY($1::uuid[])),
locked AS (
    SELECT count(pg_advisory_xact_lock(k)) AS n
    FROM (SELECT DISTINCT hashtextextended(id::text, 7) AS k FROM m ORDER BY 1) AS keys
)
SELECT m.id, m.family_id FROM m CROSS JOIN locked
"""

# The same per-customer lock, for one customer outside the consumer: a
# redemption takes it so that it never interleaves with a batch applying the
# customer's order events (the completion that would capture its hold).
LOCK_MEMBER = "SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 7))"

# In key order, as everywhere here; it also makes the B-tree insertions cheaper
# (~10% of the statement's server time for 2,000 random ids).
CLAIM_EVENTS = """
INSERT INTO processed_events (event_id, topic, partition, "offset")
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[]) AS e (id, t, p, o)
ORDER BY e.id
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""

SELECT_ORDERS = """
SELECT order_id, customer_id, placed_at, completed_at, cancelled_at, items::text AS items,
       currency_code, total_minor, paid_minor, payment_ids, points_earned, cancel_reason
FROM order_history WHERE order_id = ANY($1::text[])
ORDER BY order_id
FOR UPDATE
"""


async def lock_members(conn: Conn, customer_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Member]:
    """The customers that exist, with their families, each locked until the transaction ends."""
    rows = await conn.fetch(LOCK_MEMBERS, list(set(customer_ids)))
    return {cid: Member(cid, fid) for cid, fid in rows}


async def lock_member(conn: Conn, customer_id: uuid.UUID) -> None:
    """Wait for any batch applying this customer's events; hold the lock until commit."""
    await conn.execute(LOCK_MEMBER, customer_id)


async def claim_events(
    conn: Conn, ids: list[str], topics: list[str], partitions: list[int], offsets: list[int]
) -> set[str]:
    """Insert inbox rows (columns: event id, topic, partition, offset); returns the ids
    not seen before."""
    if not ids:
        return set()
    claimed = await conn.fetch(CLAIM_EVENTS, ids, topics, partitions, offsets)
    return {r["event_id"] for r in claimed}


# Item lists read back, by their text: orders repeat a few common lists, and
# the Items are immutable, so they are shared.
_ITEMS_READ: dict[str, tuple[Item, ...]] = {}


def _items_from_json(text: str | None) -> tuple[Item, ...]:
    if not text:
        return ()
    items = _ITEMS_READ.get(text)
    if items is None:
        raw = orjson.loads(text)
        items = tuple(
            Item(
                drink_id=str(i.get("drink_id", "")),
                drink_name=str(i.get("drink_name", "")),
                size=str(i.get("size", "")),
                quantity=int(i.get("quantity", 0)),
                unit_price_minor=int(i.get("unit_price_minor", 0)),
            )
            for i in (raw if isinstance(raw, list) else ())
            if isinstance(i, dict)
        )
        if len(_ITEMS_READ) >= 4096:
            _ITEMS_READ.clear()
        _ITEMS_READ[text] = items
    return items


async def lock_orders(conn: Conn, order_ids: Iterable[str]) -> dict[str, OrderState]:
    """The orders already known, locked until the transaction ends."""
    rows = await conn.fetch(SELECT_ORDERS, sorted(set(order_ids)))
    out = {}
    # Unpacked by position (the SELECT's column order): by name costs more, per row.
    for row in rows:
        oid, cid, placed, completed, cancelled, items, currency, total, paid, pids, pts, why = row
        out[oid] = OrderState(
            oid,
            cid,
            placed,
            completed,
            cancelled,
            _items_from_json(items),
            currency or "",
            total,
            paid,
            frozenset(pids),
            pts,
            why or "",
        )
    return out


SELECT_ACTIVE_CUSTOMERS = """
SELECT id FROM customers WHERE deleted_at IS NULL ORDER BY create_time, id LIMIT $1
"""


async def active_customers(conn: Conn, limit: int) -> list[uuid.UUID]:
    return [r["id"] for r in await conn.fetch(SELECT_ACTIVE_CUSTOMERS, limit)]
