"""The points ledger: plain SQL (accounts live in db.accounts, holds in db.redemptions).

Every change of a balance goes through `post_entries`, which appends ledger
entries and moves the balances in one statement, so a balance always equals
the sum of its entries. Nothing here commits: callers own the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import asyncpg
from prometheus_client import Counter

from customer_core.db import Conn
from customer_core.domain.loyalty import LedgerEntry, PostedEntry
from customer_core.errors import InsufficientPoints

# Counted here, where every process posts entries, so the loyalty dashboard
# sees the consumer's earnings and the api's redemptions alike.
POINTS_EARNED = Counter(
    "customer_points_earned",
    "Points earned (earn and positive adjust entries), by source.",
    ["source"],
)
POINTS_REDEEMED = Counter(
    "customer_points_redeemed", "Points spent by redemption holds, by source.", ["source"]
)
POINTS_EXPIRED = Counter("customer_points_expired", "Points expired after inactivity.")

BALANCE_CHECK = "loyalty_accounts_balance_check"

# One statement: insert what is new (a key already in the ledger inserts
# nothing), then move each touched account by the sum of what was inserted.
# Data-modifying CTEs always run to completion, read or not.
POST_ENTRIES = """
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::text[],
                         $6::text[], $7::text[], $8::uuid[], $9::text[])
        WITH ORDINALITY AS t(account_id, member_id, kind, points, reason, source,
                             source_ref, campaign_id, idempotency_key, ord)
), posted AS (
    INSERT INTO loyalty_points (account_id, member_id, kind, points, reason, source,
                                source_ref, campaign_id, idempotency_key)
    SELECT account_id, member_id, kind, points, reason, source, source_ref, campaign_id,
           idempotency_key
    FROM input ORDER BY ord
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, account_id, kind, points, idempotency_key, create_time
), totals AS (
    SELECT account_id,
           sum(points) AS net,
           coalesce(sum(points) FILTER (WHERE kind IN ('earn', 'adjust') AND points > 0), 0)
               AS earned,
           bool_or(kind <> 'expire') AS active
    FROM posted GROUP BY account_id
), moved AS (
    UPDATE loyalty_accounts a SET
        balance = a.balance + t.net,
        lifetime_points = a.lifetime_points + t.earned,
        last_activity_at = CASE WHEN t.active THEN now() ELSE a.last_activity_at END,
        update_time = now()
    FROM totals t WHERE a.id = t.account_id
    RETURNING a.id
)
SELECT id, idempotency_key, create_time FROM posted
"""

LOCK_ACCOUNTS = "SELECT id FROM loyalty_accounts WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE"

HELD_POINTS = """
SELECT coalesce(sum(points), 0) FROM redemptions WHERE account_id = $1 AND state = 'held'
"""

MEMBER_CONTRIBUTION = """
SELECT coalesce(sum(points), 0) FROM loyalty_points WHERE account_id = $1 AND member_id = $2
"""

ENTRY_COLUMNS = """
    id, account_id, member_id, kind, points, reason, source, source_ref, campaign_id,
    idempotency_key, create_time
"""

# Newest first, keyset on the ledger id.
LIST_ENTRIES = f"""
SELECT {", ".join("p." + c.strip() for c in ENTRY_COLUMNS.split(","))},
       coalesce(rc.namespace || '/' || rc.name, '') AS campaign
FROM loyalty_points p LEFT JOIN reward_campaigns rc ON rc.id = p.campaign_id
WHERE p.account_id = $1 AND ($2::bigint IS NULL OR p.id < $2)
ORDER BY p.id DESC
LIMIT $3
"""

SELECT_ENTRY_BY_KEY = f"SELECT {ENTRY_COLUMNS} FROM loyalty_points WHERE idempotency_key = $1"

# Who sees the balances of the accounts `moved` (a WITH query of loyalty_accounts
# rows): a customer's own account its customer, a pooled wallet every member of
# the family. The one rule, here and in the consumer's batch lock
# (db.order_points.LOCK_BATCH_ACCOUNTS).
VIEWERS_OF_MOVED = """
SELECT c.id, c.family_id FROM moved a JOIN customers c ON c.id = a.customer_id
UNION
SELECT c.id, c.family_id FROM moved a JOIN customers c ON c.family_id = a.family_id
"""

ACCOUNT_MEMBERS = f"""
WITH moved AS (SELECT id, customer_id, family_id FROM loyalty_accounts WHERE id = ANY($1::uuid[]))
{VIEWERS_OF_MOVED}"""


async def post_entries(
    conn: Conn, entries: Sequence[LedgerEntry], locked: AbstractSet[uuid.UUID] = frozenset()
) -> list[PostedEntry]:
    """Append `entries` to the ledger and move the balances; returns those actually posted.

    An entry whose idempotency key is already in the ledger (or earlier in the
    same batch) is skipped and not returned, so replaying an event or a
    request posts nothing twice. Posted entries come back in input order with
    their ledger id and time.

    A balance never goes negative: if the batch would overdraw any account,
    the statement fails as a whole (the CHECK on loyalty_accounts.balance),
    nothing is posted and InsufficientPoints is raised. The caller's
    transaction is then aborted and must be rolled back (let the error
    propagate). Callers that can check first lock the account
    (`lock_account`) and compare with its balance, which keeps the error
    clean under concurrency; the CHECK is the backstop.

    Accounts touched by a batch are locked in id order first, so concurrent
    batches over the same accounts cannot deadlock; unless the caller says it
    holds them all already (`locked`, the consumer's batch lock). Counts points into the
    loyalty metrics (counted when posted; a later rollback of the caller's
    transaction is rare and not subtracted).
    """
    if not entries:
        return []
    for e in entries:
        e.check()
    accounts = {e.account_id for e in entries}
    if len(accounts) > 1 and not accounts <= locked:
        await conn.execute(LOCK_ACCOUNTS, sorted(accounts))
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [], [], [])
    for e in entries:
        values = (
            e.account_id,
            e.member_id,
            e.kind,
            e.points,
            e.reason,
            e.source,
            e.source_ref,
            e.campaign_id,
            e.idempotency_key,
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    try:
        rows = await conn.fetch(POST_ENTRIES, *columns)
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name == BALANCE_CHECK:
            raise InsufficientPoints("not enough points: a balance cannot go below zero") from exc
        raise
    stored = {r["idempotency_key"]: r for r in rows}
    posted: list[PostedEntry] = []
    for e in entries:
        row = stored.pop(e.idempotency_key, None)
        if row is not None:
            posted.append(_posted(e, row))
    _count(posted)
    return posted


def _posted(e: LedgerEntry, row: asyncpg.Record) -> PostedEntry:
    return PostedEntry(
        account_id=e.account_id,
        member_id=e.member_id,
        kind=e.kind,
        points=e.points,
        reason=e.reason,
        source=e.source,
        source_ref=e.source_ref,
        campaign_id=e.campaign_id,
        idempotency_key=e.idempotency_key,
        id=row["id"],
        create_time=row["create_time"],
    )


def _count(posted: Sequence[PostedEntry]) -> None:
    # Summed per label first: the consumer posts thousands per batch, and each
    # labels().inc() takes a lock.
    earned: dict[str, int] = {}
    redeemed: dict[str, int] = {}
    expired = 0
    for e in posted:
        if e.earned:
            earned[e.source] = earned.get(e.source, 0) + e.earned
        elif e.kind == "redeem":
            redeemed[e.source] = redeemed.get(e.source, 0) - e.points
        elif e.kind == "expire":
            expired -= e.points
    for source, n in earned.items():
        POINTS_EARNED.labels(source).inc(n)
    for source, n in redeemed.items():
        POINTS_REDEEMED.labels(source).inc(n)
    if expired:
        POINTS_EXPIRED.inc(expired)


async def held_points(conn: Conn, account_id: uuid.UUID) -> int:
    """Points reserved by holds not yet captured or released."""
    return int(await conn.fetchval(HELD_POINTS, account_id))


async def member_contribution(conn: Conn, account_id: uuid.UUID, member_id: uuid.UUID) -> int:
    """Net points a member has put into (a pooled) account."""
    return int(await conn.fetchval(MEMBER_CONTRIBUTION, account_id, member_id))


def _entry(row: asyncpg.Record) -> PostedEntry:
    return PostedEntry(
        account_id=row["account_id"],
        member_id=row["member_id"],
        kind=row["kind"],
        points=row["points"],
        reason=row["reason"],
        source=row["source"],
        source_ref=row["source_ref"],
        campaign_id=row["campaign_id"],
        idempotency_key=row["idempotency_key"],
        id=row["id"],
        create_time=row["create_time"],
        campaign=row.get("campaign", ""),
    )


async def list_entries(
    conn: Conn, account_id: uuid.UUID, before_id: int | None, limit: int
) -> list[PostedEntry]:
    """The account's ledger, newest first, starting below `before_id` when given."""
    return [_entry(r) for r in await conn.fetch(LIST_ENTRIES, account_id, before_id, limit)]


async def fetch_entry_by_key(conn: Conn, key: str) -> PostedEntry | None:
    row = await conn.fetchrow(SELECT_ENTRY_BY_KEY, key)
    return _entry(row) if row else None


async def account_members(
    conn: Conn, account_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """Customers who see these accounts' balances (every member of a pooled wallet),
    each with its family. Use `usecases.balances.viewers`, which every path shares."""
    wanted = list(set(account_ids))
    if not wanted:
        return {}
    rows = await conn.fetch(ACCOUNT_MEMBERS, wanted)
    return {r["id"]: r["family_id"] for r in rows}
