"""Order history, order statistics and the consumer's inbox: set-based SQL.

Every statement takes whole arrays (one round trip per table per batch), and
rows are written in key order so that two consumers never wait on each other
in opposite orders.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from customer_core.db import Conn
from customer_core.domain.orders import Item, OrderState, StatsDelta

# Errors after which the same batch may well succeed: the server went away or
# is starting, a deadlock or serialisation failure between two consumers, a
# concurrent insert of the same key (the retry then sees the committed row).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.OperatorInterventionError,
    asyncpg.TransactionRollbackError,
    asyncpg.UniqueViolationError,
    asyncpg.InsufficientResourcesError,
)


@dataclass(frozen=True)
class Member:
    customer_id: uuid.UUID
    family_id: uuid.UUID


SELECT_MEMBERS = """
SELECT id, family_id FROM customers WHERE id = ANY($1::uuid[])
"""

# A transaction-scoped lock per family, taken in key order: everything one batch
# writes (a member's statistics, orders, own or pooled points account) belongs
# to a locked family, so concurrent consumers serialise per family.
LOCK_FAMILIES = """
SELECT count(pg_advisory_xact_lock(k))
FROM (SELECT DISTINCT hashtextextended(f::text, 7) AS k
      FROM unnest($1::uuid[]) AS f ORDER BY 1) AS keys
"""

CLAIM_EVENTS = """
INSERT INTO processed_events (event_id, topic, partition, "offset")
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[])
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

# Items NULL: unchanged since read (the row exists and is locked), keep them; a
# proposed row cannot carry SQL NULL into a NOT NULL column, so JSON null stands in.
UPSERT_ORDERS = """
INSERT INTO order_history AS h (
    order_id, customer_id, family_id, placed_at, completed_at, cancelled_at, items,
    currency_code, total_minor, paid_minor, payment_ids, points_earned, cancel_reason)
SELECT o.order_id, o.customer_id, o.family_id, o.placed_at, o.completed_at, o.cancelled_at,
       coalesce(o.items::jsonb, 'null'), NULLIF(o.currency_code, ''), o.total_minor, o.paid_minor,
       ARRAY(SELECT json_array_elements_text(o.payment_ids::json)), o.points_earned,
       NULLIF(o.cancel_reason, '')
FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::timestamptz[],
            $6::timestamptz[], $7::text[], $8::text[], $9::bigint[], $10::bigint[],
            $11::text[], $12::bigint[], $13::text[])
     AS o(order_id, customer_id, family_id, placed_at, completed_at, cancelled_at, items,
          currency_code, total_minor, paid_minor, payment_ids, points_earned, cancel_reason)
ORDER BY o.order_id
ON CONFLICT (order_id) DO UPDATE SET
    placed_at = EXCLUDED.placed_at,
    completed_at = EXCLUDED.completed_at,
    cancelled_at = EXCLUDED.cancelled_at,
    items = CASE WHEN EXCLUDED.items = 'null' THEN h.items ELSE EXCLUDED.items END,
    currency_code = EXCLUDED.currency_code,
    total_minor = EXCLUDED.total_minor,
    paid_minor = EXCLUDED.paid_minor,
    payment_ids = EXCLUDED.payment_ids,
    points_earned = EXCLUDED.points_earned,
    cancel_reason = EXCLUDED.cancel_reason,
    update_time = now()
"""

ADD_STATS = """
INSERT INTO order_stats AS s (
    customer_id, order_count, completed_count, cancelled_count, total_spent_minor,
    payment_count, currency_code, first_order_at, last_order_at)
SELECT d.customer_id, d.orders, d.completed, d.cancelled, d.spent, d.payments,
       NULLIF(d.currency_code, ''), d.first_at, d.last_at
FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
            $7::text[], $8::timestamptz[], $9::timestamptz[])
     AS d(customer_id, orders, completed, cancelled, spent, payments, currency_code,
          first_at, last_at)
ORDER BY d.customer_id
ON CONFLICT (customer_id) DO UPDATE SET
    order_count = s.order_count + EXCLUDED.order_count,
    completed_count = s.completed_count + EXCLUDED.completed_count,
    cancelled_count = s.cancelled_count + EXCLUDED.cancelled_count,
    total_spent_minor = s.total_spent_minor + EXCLUDED.total_spent_minor,
    payment_count = s.payment_count + EXCLUDED.payment_count,
    currency_code = COALESCE(s.currency_code, EXCLUDED.currency_code),
    first_order_at = LEAST(s.first_order_at, EXCLUDED.first_order_at),
    last_order_at = GREATEST(s.last_order_at, EXCLUDED.last_order_at),
    update_time = now()
"""

ADD_DRINKS = """
INSERT INTO order_stats_drinks AS d (customer_id, drink_id, drink_name, count)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[])
ORDER BY 1, 2
ON CONFLICT (customer_id, drink_id) DO UPDATE SET
    count = d.count + EXCLUDED.count,
    drink_name = CASE WHEN EXCLUDED.drink_name = '' THEN d.drink_name
                      ELSE EXCLUDED.drink_name END
"""

ADD_HOURS = """
INSERT INTO order_stats_hours AS h (customer_id, hour_of_week, count)
SELECT * FROM unnest($1::uuid[], $2::smallint[], $3::bigint[])
ORDER BY 1, 2
ON CONFLICT (customer_id, hour_of_week) DO UPDATE SET count = h.count + EXCLUDED.count
"""


async def members(conn: Conn, customer_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Member]:
    rows = await conn.fetch(SELECT_MEMBERS, list(set(customer_ids)))
    return {r["id"]: Member(r["id"], r["family_id"]) for r in rows}


async def lock_families(conn: Conn, family_ids: Iterable[uuid.UUID]) -> None:
    await conn.fetchval(LOCK_FAMILIES, list(set(family_ids)))


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
        raw = json.loads(text)
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


def _items_json(items: tuple[Item, ...]) -> str:
    return json.dumps(
        [
            {
                "drink_id": i.drink_id,
                "drink_name": i.drink_name,
                "size": i.size,
                "quantity": i.quantity,
                "unit_price_minor": i.unit_price_minor,
            }
            for i in items
        ],
        separators=(",", ":"),
    )


async def lock_orders(conn: Conn, order_ids: Iterable[str]) -> dict[str, OrderState]:
    """The orders already known, locked until the transaction ends."""
    rows = await conn.fetch(SELECT_ORDERS, sorted(set(order_ids)))
    out = {}
    # Unpacked by position (the SELECT's column order): by name costs more, per row.
    for row in rows:
        oid, cid, placed, completed, cancelled, items, currency, total, paid, pids, pts, why = row
        out[oid] = OrderState(
            oid, cid, placed, completed, cancelled, _items_from_json(items), currency or "",
            total, paid, frozenset(pids), pts, why or "",
        )  # fmt: skip
    return out


def _payment_ids_json(ids: frozenset[str]) -> str:
    return json.dumps(sorted(ids)) if ids else "[]"


async def save_orders(
    conn: Conn,
    orders: Sequence[OrderState],
    family_of: Mapping[uuid.UUID, uuid.UUID],
    loaded: Mapping[str, OrderState],
) -> None:
    """Upsert the orders; `loaded` are the rows read (and locked) before, whose items
    are not sent again when the batch left them as they were."""
    if not orders:
        return
    items = []
    for o in orders:
        before = loaded.get(o.order_id)
        items.append(
            None if before is not None and o.items is before.items else _items_json(o.items)
        )
    await conn.execute(
        UPSERT_ORDERS,
        [o.order_id for o in orders],
        [o.customer_id for o in orders],
        [family_of.get(o.customer_id) for o in orders],
        [o.placed_at for o in orders],
        [o.completed_at for o in orders],
        [o.cancelled_at for o in orders],
        items,
        [o.currency_code for o in orders],
        [o.total_minor for o in orders],
        [o.paid_minor for o in orders],
        [_payment_ids_json(o.payment_ids) for o in orders],
        [o.points_earned for o in orders],
        [o.cancel_reason for o in orders],
    )


async def add_stats(conn: Conn, deltas: Mapping[uuid.UUID, StatsDelta]) -> None:
    """Add per-customer deltas to order_stats, order_stats_drinks and order_stats_hours."""
    if not deltas:
        return
    order = sorted(deltas)
    stats: list[list[object]] = [[] for _ in range(9)]
    drinks: list[list[object]] = [[] for _ in range(4)]
    hours: list[list[object]] = [[] for _ in range(3)]
    for customer_id in order:
        d = deltas[customer_id]
        row: tuple[object, ...] = (
            customer_id, d.orders, d.completed, d.cancelled, d.spent_minor, d.payments,
            d.currency_code, d.first_order_at, d.last_order_at,
        )  # fmt: skip
        for col, value in zip(stats, row, strict=True):
            col.append(value)
        for drink_id, count in d.drinks.items():
            for col, value in zip(
                drinks, (customer_id, drink_id, d.drink_names.get(drink_id, ""), count), strict=True
            ):
                col.append(value)
        for hour, count in d.hours.items():
            for col, value in zip(hours, (customer_id, hour, count), strict=True):
                col.append(value)
    await conn.execute(ADD_STATS, *stats)
    if drinks[0]:
        await conn.execute(ADD_DRINKS, *drinks)
    if hours[0]:
        await conn.execute(ADD_HOURS, *hours)


SELECT_ACTIVE_CUSTOMERS = """
SELECT id FROM customers WHERE deleted_at IS NULL ORDER BY create_time, id LIMIT $1
"""


async def active_customers(conn: Conn, limit: int) -> list[uuid.UUID]:
    return [r["id"] for r in await conn.fetch(SELECT_ACTIVE_CUSTOMERS, limit)]
