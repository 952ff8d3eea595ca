"""What the consumer writes for a batch: order history and statistics, in ONE statement.

The statements are set-based (whole arrays, rows in key order so that two
consumers never wait on each other in opposite orders) and run as
data-modifying CTEs of one statement: one round trip instead of four, each of
which, on a busy machine, costs two wake-ups. Each CTE writes its own table,
so none needs to see another's rows.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence

import orjson

from customer_core.db import Conn, outage
from customer_core.domain.order_events import Item, OrderState, StatsDelta

# Items NULL: unchanged since read (the row exists and is locked), keep them; a
# proposed row cannot carry SQL NULL into a NOT NULL column, so JSON null stands in.
# Only the order's own customer's row is updated: a "new" order another customer's
# batch created meanwhile (not visible when this batch read its orders) is left
# alone, and write_batch raises WriteConflict; run again, the batch sees it.
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
WHERE h.customer_id = EXCLUDED.customer_id
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


def _renumber(sql: str, offset: int) -> str:
    return re.sub(r"\$(\d+)", lambda m: f"${int(m[1]) + offset}", sql)


def combined(parts: Sequence[tuple[str, str, int]]) -> str:
    """One statement running each (name, statement, parameter count) as a CTE."""
    ctes, offset = [], 0
    for name, sql, n in parts:
        ctes.append(f"{name} AS ({_renumber(sql.strip(), offset)} RETURNING 1)")
        offset += n
    return "WITH " + ",\n".join(ctes) + f"\nSELECT count(*) FROM {parts[0][0]}"


WRITE_BATCH = combined(
    [
        ("hist", UPSERT_ORDERS, 13),
        ("stats", ADD_STATS, 9),
        ("drinks", ADD_DRINKS, 4),
        ("hours", ADD_HOURS, 3),
    ]
)


def _items_json(items: tuple[Item, ...]) -> str:
    # orjson writes a dataclass's fields in order, in C: the same document as a
    # list of dicts built here, at a third of the cost (once per changed order).
    return orjson.dumps(items).decode()


def _payment_ids_json(ids: frozenset[str]) -> str:
    return orjson.dumps(sorted(ids)).decode() if ids else "[]"


def _columns(rows: Sequence[tuple[object, ...]], width: int) -> list[list[object]]:
    """Rows to the statement's column arrays (transposed in C by zip)."""
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def _order_columns(
    orders: Sequence[OrderState],
    family_of: Mapping[uuid.UUID, uuid.UUID],
    loaded: Mapping[str, OrderState],
) -> list[list[object]]:
    rows = []
    for o in orders:
        before = loaded.get(o.order_id)
        kept = before is not None and o.items is before.items
        rows.append(
            (
                o.order_id,
                o.customer_id,
                family_of.get(o.customer_id),
                o.placed_at,
                o.completed_at,
                o.cancelled_at,
                None if kept else _items_json(o.items),
                o.currency_code,
                o.total_minor,
                o.paid_minor,
                _payment_ids_json(o.payment_ids),
                o.points_earned,
                o.cancel_reason,
            )
        )
    return _columns(rows, 13)


def _stats_columns(deltas: Mapping[uuid.UUID, StatsDelta]) -> list[list[object]]:
    stats: list[tuple[object, ...]] = []
    drinks: list[tuple[object, ...]] = []
    hours: list[tuple[object, ...]] = []
    for customer_id in sorted(deltas):
        d = deltas[customer_id]
        stats.append(
            (
                customer_id,
                d.orders,
                d.completed,
                d.cancelled,
                d.spent_minor,
                d.payments,
                d.currency_code,
                d.first_order_at,
                d.last_order_at,
            )
        )
        names = d.drink_names
        drinks += [(customer_id, k, names.get(k, ""), n) for k, n in d.drinks.items()]
        hours += [(customer_id, hour, n) for hour, n in d.hours.items()]
    return _columns(stats, 9) + _columns(drinks, 4) + _columns(hours, 3)


async def write_batch(
    conn: Conn,
    orders: Sequence[OrderState],
    family_of: Mapping[uuid.UUID, uuid.UUID],
    loaded: Mapping[str, OrderState],
    deltas: Mapping[uuid.UUID, StatsDelta],
) -> None:
    """Upsert the orders and add the per-customer deltas to order_stats,
    order_stats_drinks and order_stats_hours. `loaded` are the order rows read
    (and locked) before: items the batch left as they were are not sent again."""
    if not orders and not deltas:
        return
    columns = _order_columns(orders, family_of, loaded) + _stats_columns(deltas)
    written = await conn.fetchval(WRITE_BATCH, *columns)
    if written != len(orders):
        raise outage.WriteConflict(
            f"{len(orders) - written} of {len(orders)} orders were created meanwhile by"
            " another customer's batch"
        )
