"""The ledger's storage functions against the real database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from customer_core.context import Context
from customer_core.db import accounts as accounts_db
from customer_core.db import loyalty as db
from customer_core.db import redemptions as redemptions_db
from customer_core.db import rewards as rdb
from customer_core.domain.loyalty import LedgerEntry
from customer_core.domain.rewards import Redemption, RedemptionState
from customer_core.errors import InsufficientPoints
from tests.integration.loyalty.conftest import NewCustomer

FREE_COFFEE = uuid.UUID("5eed0000-0000-4000-8000-000000000002")


def entry(
    account: uuid.UUID, member: uuid.UUID, points: int, key: str, kind: str = ""
) -> LedgerEntry:
    kind = kind or ("earn" if points > 0 else "redeem")
    return LedgerEntry(account, member, kind, points, "test", "order", "o-1", None, key)


async def ledger_sum(conn: asyncpg.Connection, account: uuid.UUID) -> int:
    return int(
        await conn.fetchval(
            "SELECT coalesce(sum(points), 0) FROM loyalty_points WHERE account_id = $1", account
        )
    )


async def test_post_entries_moves_balance_and_skips_known_keys(
    ctx: Context, new_customer: NewCustomer
) -> None:
    cid = await new_customer()
    async with ctx.pool.acquire() as conn, conn.transaction():
        account = await accounts_db.account_for_customer(conn, cid)
        assert account is not None and account.balance == 0
        first = await db.post_entries(
            conn,
            [
                entry(account.id, cid, 120, "k1"),
                entry(account.id, cid, 30, "k2"),
                entry(account.id, cid, 999, "k1"),
            ],  # same key later in the batch
        )
        assert [(e.idempotency_key, e.points) for e in first] == [("k1", 120), ("k2", 30)]
        assert first[0].id < first[1].id and first[0].create_time is not None
        again = await db.post_entries(conn, [entry(account.id, cid, 120, "k1")])
        assert again == []
        after = await accounts_db.lock_account(conn, account.id)
        assert after.balance == 150 == await ledger_sum(conn, account.id)
        assert after.lifetime_points == 150
        assert after.last_activity_at is not None


async def test_overdraw_posts_nothing_and_says_insufficient_points(
    ctx: Context, new_customer: NewCustomer
) -> None:
    cid = await new_customer()
    async with ctx.pool.acquire() as conn:
        async with conn.transaction():
            account = await accounts_db.account_for_customer(conn, cid)
            assert account is not None
            await db.post_entries(conn, [entry(account.id, cid, 50, "earn")])
        with pytest.raises(InsufficientPoints):
            async with conn.transaction():
                await db.post_entries(conn, [entry(account.id, cid, -51, "spend")])
        assert (await accounts_db.lock_account(conn, account.id)).balance == 50
        assert await ledger_sum(conn, account.id) == 50


async def test_ledger_is_append_only(ctx: Context, new_customer: NewCustomer) -> None:
    cid = await new_customer()
    async with ctx.pool.acquire() as conn:
        account = await accounts_db.account_for_customer(conn, cid)
        assert account is not None
        await db.post_entries(conn, [entry(account.id, cid, 5, "e")])
        for sql in ("UPDATE loyalty_points SET points = 500", "DELETE FROM loyalty_points"):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(sql)


async def test_account_is_created_once_and_pooled_family_shares_one(
    ctx: Context, new_customer: NewCustomer
) -> None:
    parent = await new_customer(pooled=True)
    async with ctx.pool.acquire() as conn:
        family = await conn.fetchval("SELECT family_id FROM customers WHERE id = $1", parent)
        child = await new_customer(family_id=family, role="child")
        a = await accounts_db.account_for_customer(conn, parent)
        b = await accounts_db.account_for_customer(conn, child)
        assert a is not None and b is not None
        assert a.id == b.id and a.pooled and a.family_id == family
        solo = await new_customer()
        s1 = await accounts_db.account_for_customer(conn, solo)
        s2 = await accounts_db.account_for_customer(conn, solo)
        assert s1 is not None and s2 is not None
        assert s1.id == s2.id and not s1.pooled and s1.customer_id == solo
        assert await accounts_db.account_for_customer(conn, uuid.uuid4()) is None


async def _hold(
    conn: asyncpg.Connection, cid: uuid.UUID, order: str, expires: datetime
) -> Redemption:
    account = await accounts_db.account_for_customer(conn, cid)
    assert account is not None
    rid = uuid.uuid4()
    r = await rdb.insert_redemption(
        conn,
        Redemption(
            rid,
            account.id,
            cid,
            FREE_COFFEE,
            order,
            100,
            RedemptionState.HELD,
            "h",
            hold_expires_at=expires,
        ),
        f"key-{rid}",
    )
    assert r is not None
    await db.post_entries(
        conn,
        [
            LedgerEntry(
                account.id, cid, "redeem", -100, "redeemed", "reward", None, None, f"r:{rid}"
            )
        ],
    )
    return r


async def test_holds_capture_release_and_expire_once(
    ctx: Context, new_customer: NewCustomer
) -> None:
    cid = await new_customer()
    now = datetime.now(UTC)
    async with ctx.pool.acquire() as conn:
        account = await accounts_db.account_for_customer(conn, cid)
        assert account is not None
        await db.post_entries(conn, [entry(account.id, cid, 400, "seed")])
        await _hold(conn, cid, "o-cap", now + timedelta(hours=1))
        await _hold(conn, cid, "o-rel", now + timedelta(hours=1))
        await _hold(conn, cid, "o-old", now - timedelta(seconds=1))
        assert await db.held_points(conn, account.id) == 300
        assert (await accounts_db.lock_account(conn, account.id)).balance == 100

        captured = await redemptions_db.capture_holds_for_order(conn, ["o-cap", "o-cap", "nope"])
        assert [r.state for r in captured] == [RedemptionState.CAPTURED]
        assert await redemptions_db.capture_holds_for_order(conn, ["o-cap"]) == []

        released = await redemptions_db.release_holds_for_order(conn, ["o-rel"], "order cancelled")
        assert [r.state for r in released] == [RedemptionState.RELEASED]
        assert await redemptions_db.release_holds_for_order(conn, ["o-rel"], "again") == []

        assert len(await redemptions_db.expire_due_holds(conn, now)) == 1
        assert await redemptions_db.expire_due_holds(conn, now) == []

        # A captured hold whose order is cancelled afterwards is refunded.
        refunded = await redemptions_db.release_holds_for_order(conn, ["o-cap"], "order cancelled")
        assert [r.state for r in refunded] == [RedemptionState.REFUNDED]

        assert await db.held_points(conn, account.id) == 0
        final = await accounts_db.lock_account(conn, account.id)
        assert final.balance == 400 == await ledger_sum(conn, account.id)
