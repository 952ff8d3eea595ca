"""Hold release and reconciliation (which reports and repairs nothing)."""

from __future__ import annotations

import uuid

from customer_core import activity_streams, notices
from customer_core.context import Context
from customer_core.db.loyalty import post_entries
from customer_core.domain.jobs import JobPolicy
from customer_core.domain.loyalty import LedgerEntry
from customer_core.usecases.jobs.holds import release_holds
from customer_core.usecases.jobs.reconcile import reconcile
from tests.integration.jobs.conftest import (
    NOW,
    add_account,
    add_customer,
    add_order,
    days,
    snapshot,
)

REWARD = uuid.UUID("5eed0000-0000-4000-8000-000000000002")  # seeded, costs 100


async def hold(
    ctx: Context, customer: uuid.UUID, account: uuid.UUID, expires_after: float
) -> uuid.UUID:
    redemption = uuid.uuid4()
    async with ctx.pool.acquire() as conn, conn.transaction():
        await post_entries(
            conn,
            [
                LedgerEntry(
                    account_id=account,
                    member_id=customer,
                    kind="redeem",
                    points=-100,
                    reason="hold",
                    source="reward",
                    idempotency_key=f"redemption:{redemption}:redeem",
                )
            ],
        )
        await conn.execute(
            """INSERT INTO redemptions (id, account_id, customer_id, reward_id, order_id, points,
                   state, idempotency_key, request_hash, hold_expires_at)
               VALUES ($1, $2, $3, $4, $5, 100, 'held', $6, 'h', $7)""",
            redemption,
            account,
            customer,
            REWARD,
            f"order-{redemption}",
            f"k-{redemption}",
            NOW + days(expires_after),
        )
    return redemption


async def test_holds_past_timeout_are_released_once(ctx: Context, policy: JobPolicy) -> None:
    async with ctx.pool.acquire() as conn:
        customer = await add_customer(conn)
        account = await add_account(conn, customer, 1000, NOW)
    due = [await hold(ctx, customer, account, -0.01) for _ in range(9)]
    live = await hold(ctx, customer, account, 0.01)

    outcome = await release_holds(ctx, policy, NOW)

    assert outcome.rows == 9
    async with ctx.pool.acquire() as conn:
        states = {
            r["id"]: r["state"] for r in await conn.fetch("SELECT id, state FROM redemptions")
        }
        assert {states[r] for r in due} == {"expired"} and states[live] == "held"
        assert (
            await conn.fetchval("SELECT balance FROM loyalty_accounts WHERE id = $1", account)
            == 900
        )
    before = await snapshot(ctx, "SELECT * FROM loyalty_points ORDER BY id")
    assert (await release_holds(ctx, policy, NOW)).rows == 0
    assert await snapshot(ctx, "SELECT * FROM loyalty_points ORDER BY id") == before


async def test_an_expired_hold_is_in_the_redeemers_activity_feed(
    ctx: Context, policy: JobPolicy
) -> None:
    # The job is the one home of hold expiry: its release shows in the feed
    # as the reversal it is, not only as a refreshed balance.
    async with ctx.pool.acquire() as conn:
        customer = await add_customer(conn)
        account = await add_account(conn, customer, 1000, NOW)
    redemption = await hold(ctx, customer, account, -0.01)

    assert (await release_holds(ctx, policy, NOW)).rows == 1

    feed = await activity_streams.read_after(
        ctx.valkey, notices.customer_stream(customer), "0-0", 10
    )
    assert [(e.activity.kind, e.activity.order_id, e.activity.points) for e in feed] == [
        ("reward_reversed", f"order-{redemption}", 100)
    ]


async def test_reconcile_reports_differences_with_ids_and_repairs_nothing(
    ctx: Context, policy: JobPolicy
) -> None:
    async with ctx.pool.acquire() as conn:
        customer = await add_customer(conn)
        account = await add_account(conn, customer, 200, NOW)
        earned = await add_order(conn, customer, None, NOW, completed_at=NOW, points=20)
        await post_entries(
            conn,
            [
                LedgerEntry(
                    account_id=account,
                    member_id=customer,
                    kind="earn",
                    points=20,
                    reason="order",
                    source="order",
                    source_ref=earned,
                    idempotency_key=f"order:{earned}:earn",
                )
            ],
        )
    clean = await reconcile(ctx, policy, NOW)
    assert clean.rows == 0, clean.detail

    async with ctx.pool.acquire() as conn:
        missing = await add_order(conn, customer, None, NOW, completed_at=NOW, points=5)
        # Free points behind the ledger's back: the balance no longer matches.
        await conn.execute(
            "UPDATE loyalty_accounts SET balance = balance + 7 WHERE id = $1", account
        )
    before = await snapshot(ctx, "SELECT * FROM loyalty_accounts", "SELECT * FROM loyalty_points")

    report = await reconcile(ctx, policy, NOW)

    found = {f.check: f for f in report.findings}
    assert found["balance_mismatch"].count == 1
    assert found["balance_mismatch"].ids == (str(account),)
    assert found["order_earned"].ids == (missing,)
    assert found["negative_balance"].count == 0
    assert report.rows == 2
    assert (
        await snapshot(ctx, "SELECT * FROM loyalty_accounts", "SELECT * FROM loyalty_points")
        == before
    )
