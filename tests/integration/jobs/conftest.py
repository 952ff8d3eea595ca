"""Fixtures for the jobs: job settings, and plain-SQL seeding of customers, points and orders."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from customer_core.config import Settings
from customer_core.context import Context
from customer_core.db import Conn
from customer_core.db.loyalty import post_entries
from customer_core.domain.jobs import JobPolicy
from customer_core.domain.loyalty import LedgerEntry
from customer_scheduler.settings import JobSettings, load_job_settings

NOW = datetime(2025, 6, 11, 12, 0, tzinfo=UTC)  # a Wednesday


@pytest.fixture
def job_settings(settings: Settings, base_env: Mapping[str, str]) -> JobSettings:
    return load_job_settings(settings, {**base_env, "DB_NAME": settings.db.name})


@pytest.fixture
def policy() -> JobPolicy:
    return JobPolicy(batch_size=7)  # small batches: the loops are exercised


async def add_family(conn: Conn, pooled: bool = False) -> uuid.UUID:
    family = uuid.uuid4()
    await conn.execute(
        "INSERT INTO families (id, display_name, wallet_pooled) VALUES ($1, 'F', $2)",
        family,
        pooled,
    )
    return family


async def add_customer(conn: Conn, family: uuid.UUID | None = None) -> uuid.UUID:
    family = family or await add_family(conn)
    customer = uuid.uuid4()
    await conn.execute(
        "INSERT INTO customers (id, family_id, username, display_name, email, allergies)"
        " VALUES ($1, $2, $3, 'Pat', 'pat@example.com', '{nuts}')",
        customer,
        family,
        f"user{customer.hex[:10]}",
    )
    return customer


async def add_account(
    conn: Conn,
    customer: uuid.UUID,
    points: int,
    active_at: datetime | None,
    tier: str = "green",
) -> uuid.UUID:
    account = uuid.uuid4()
    await conn.execute(
        "INSERT INTO loyalty_accounts (id, customer_id, tier) VALUES ($1, $2, $3)",
        account,
        customer,
        tier,
    )
    if points:
        entry = LedgerEntry(
            account_id=account,
            member_id=customer,
            kind="earn",
            points=points,
            reason="seed",
            source="operator",
            idempotency_key=f"seed:{account}",
        )
        await post_entries(conn, [entry])
    await conn.execute(
        "UPDATE loyalty_accounts SET last_activity_at = $2 WHERE id = $1", account, active_at
    )
    return account


async def add_order(
    conn: Conn,
    customer: uuid.UUID,
    family: uuid.UUID | None,
    placed_at: datetime | None,
    *,
    completed_at: datetime | None = None,
    cancelled_at: datetime | None = None,
    paid: int = 0,
    points: int = 0,
    order_id: str | None = None,
) -> str:
    order_id = order_id or f"o-{uuid.uuid4().hex[:12]}"
    await conn.execute(
        """INSERT INTO order_history (order_id, customer_id, family_id, placed_at, completed_at,
               cancelled_at, paid_minor, points_earned, create_time)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
                   coalesce($4, $5, $6, now()))""",
        order_id,
        customer,
        family,
        placed_at,
        completed_at,
        cancelled_at,
        paid,
        points,
    )
    return order_id


async def snapshot(ctx: Context, *queries: str) -> list[list[tuple[object, ...]]]:
    async with ctx.pool.acquire() as conn:
        return [[tuple(r) for r in await conn.fetch(q)] for q in queries]


def days(n: float) -> timedelta:
    return timedelta(days=n)
