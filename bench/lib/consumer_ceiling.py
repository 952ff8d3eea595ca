"""The consumer benchmark's data and its raw ceiling (bench/consumer.py).

Customers as the benchmark creates them, and the ceiling: the rows the consumer
writes for a list of events (inbox, history, statistics, drinks, hours, ledger
entries and balances), computed beforehand and written as ONE set-based
statement per batch, with no Kafka, no decoding and no per-batch reads.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import defaultdict

from customer_core.db import inbox as db
from customer_core.db import order_writes
from customer_core.domain.loyalty import EarningRules, points_for_amount
from customer_core.domain.order_events import (
    Completed,
    OrderEvent,
    OrderState,
    apply_event,
    stats_deltas,
)


def plan_customers(n: int) -> tuple[list, list, list, list, dict[uuid.UUID, uuid.UUID]]:
    """n customers: 80% alone in their family, the rest four to a pooled family."""
    customers, families, members, accounts = [], [], [], []
    account_of: dict[uuid.UUID, uuid.UUID] = {}
    pooled_family, pooled_account, in_family = None, None, 0
    for i in range(n):
        cid = uuid.uuid4()
        if i % 5 == 4:
            if pooled_family is None or in_family == 4:
                pooled_family, pooled_account, in_family = uuid.uuid4(), uuid.uuid4(), 0
                families.append((pooled_family, True))
                accounts.append((pooled_account, None, pooled_family))
            in_family += 1
            members.append((cid, pooled_family))
            account_of[cid] = pooled_account
        else:
            fid, aid = uuid.uuid4(), uuid.uuid4()
            families.append((fid, False))
            accounts.append((aid, cid, None))
            members.append((cid, fid))
            account_of[cid] = aid
        customers.append(cid)
    return customers, families, members, accounts, account_of


async def insert_customers(conn, families: list, members: list, accounts: list) -> None:
    await conn.executemany(
        "INSERT INTO families (id, display_name, wallet_pooled) VALUES ($1, 'Bench', $2)", families
    )
    await conn.executemany(
        "INSERT INTO customers (id, family_id, username) VALUES ($1, $2, $3)",
        [(cid, fid, cid.hex) for cid, fid in members],
    )
    await conn.executemany(
        "INSERT INTO loyalty_accounts (id, customer_id, family_id) VALUES ($1, $2, $3)", accounts
    )


def _renumber(sql: str, offset: int) -> str:
    return re.sub(r"\$(\d+)", lambda m: f"${int(m[1]) + offset}", sql)


def ceiling_statement() -> str:
    """Inbox, history, stats, drinks, hours, ledger and balances in one statement."""
    parts = [
        ("inbox", db.CLAIM_EVENTS.replace("RETURNING event_id", "RETURNING 1"), 4),
        ("hist", order_writes.UPSERT_ORDERS + " RETURNING 1", 13),
        ("stats", order_writes.ADD_STATS + " RETURNING 1", 9),
        ("drinks", order_writes.ADD_DRINKS + " RETURNING 1", 4),
        ("hours", order_writes.ADD_HOURS + " RETURNING 1", 3),
    ]
    ctes, offset = [], 0
    for name, sql, n in parts:
        ctes.append(f"{name} AS ({_renumber(sql.strip(), offset)})")
        offset += n
    ledger = f"""pts AS (
        INSERT INTO loyalty_points (account_id, member_id, kind, points, reason, source,
                                    source_ref, idempotency_key)
        SELECT a, m, k, p, 'bench', 'order', r, key
        FROM unnest(${offset + 1}::uuid[], ${offset + 2}::uuid[], ${offset + 3}::text[],
                    ${offset + 4}::bigint[], ${offset + 5}::text[], ${offset + 6}::text[])
             AS t(a, m, k, p, r, key)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING account_id, points),
    bal AS (
        UPDATE loyalty_accounts acc SET balance = acc.balance + t.net,
               lifetime_points = acc.lifetime_points + greatest(t.net, 0)
        FROM (SELECT account_id, sum(points) AS net FROM pts GROUP BY 1) AS t
        WHERE acc.id = t.account_id RETURNING 1)"""
    ctes.append(ledger)
    return "WITH " + ",\n".join(ctes) + "\nSELECT (SELECT count(*) FROM inbox)"


def _columns(rows: list[tuple], width: int) -> list[list]:
    cols: list[list] = [[] for _ in range(width)]
    for row in rows:
        for col, value in zip(cols, row, strict=True):
            col.append(value)
    return cols


def ceiling_batches(events: list[OrderEvent], account_of, family_of, batch: int) -> list[list]:
    """Per batch, the statement's arguments: the rows the consumer would write."""
    rules = EarningRules()
    states: dict[str, OrderState] = {}
    earned: dict[str, list[tuple]] = defaultdict(list)
    seen: set[str] = set()
    out = []
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        inbox, changes, initial = [], [], {}
        for i, ev in enumerate(chunk):
            inbox.append((ev.event_id, ev.topic.value, 0, start + i))
            if ev.event_id in seen:
                continue
            seen.add(ev.event_id)
            before = states.get(ev.order_id) or OrderState(ev.order_id, ev.customer_id)
            initial.setdefault(ev.order_id, before)
            states[ev.order_id], change = apply_event(before, ev)
            changes.append(change)
        ledger = []
        for c in changes:
            body = c.event.body
            if c.completed and isinstance(body, Completed):
                pts = points_for_amount(body.total_minor, body.currency_code, rules)
                if pts:
                    oid, cid = c.event.order_id, c.event.customer_id
                    entry = (account_of[cid], cid, "earn", pts, oid, f"order:{oid}:earn")
                    ledger.append(entry)
                    earned[oid].append(entry)
        for oid, before in initial.items():
            if states[oid].reversal_due and not before.reversal_due:
                for a, m, _, p, r, key in earned[oid]:
                    ledger.append((a, m, "reverse", -p, r, f"{key}:reverse"))
        uniq_inbox = list({row[0]: row for row in inbox}.values())
        hist = [states[oid] for oid in sorted(initial)]
        hist_rows = [
            (
                o.order_id,
                o.customer_id,
                family_of[o.customer_id],
                o.placed_at,
                o.completed_at,
                o.cancelled_at,
                order_writes._items_json(o.items),
                o.currency_code,
                o.total_minor,
                o.paid_minor,
                json.dumps(sorted(o.payment_ids)),
                o.points_earned,
                o.cancel_reason,
            )
            for o in hist
        ]
        deltas = stats_deltas((c, states[c.event.order_id]) for c in changes)
        stats, drinks, hours = [], [], []
        for cid in sorted(deltas):
            d = deltas[cid]
            stats.append(
                (
                    cid,
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
            drinks += [(cid, k, d.drink_names.get(k, ""), n) for k, n in d.drinks.items()]
            hours += [(cid, h, n) for h, n in d.hours.items()]
        out.append(
            _columns(uniq_inbox, 4)
            + _columns(hist_rows, 13)
            + _columns(stats, 9)
            + _columns(drinks, 4)
            + _columns(hours, 3)
            + _columns(ledger, 6)
        )
    return out


async def measure_ceiling(conn, batches: list[list]) -> float:
    sql = ceiling_statement()
    stmt = await conn.prepare(sql)
    start = time.perf_counter()
    for args in batches:
        async with conn.transaction():
            await stmt.fetchval(*args)
    return time.perf_counter() - start
