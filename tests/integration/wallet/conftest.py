"""Family wallet fixtures: a family of owner, adult and child written with plain SQL,
points earned through the consumer's real batch path, and small readers."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import pytest

from customer_core.context import Context
from customer_core.domain.order_events import Completed, OrderEvent, Topic
from customer_core.usecases.events import Incoming, apply_batch

FREE_COFFEE = uuid.UUID("5eed0000-0000-4000-8000-000000000002")  # 100 points
CUSTOMIZATION = uuid.UUID("5eed0000-0000-4000-8000-000000000001")  # 25 points


@dataclass(frozen=True)
class Family:
    id: uuid.UUID
    owner: uuid.UUID
    adult: uuid.UUID
    child: uuid.UUID

    @property
    def members(self) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
        return (self.owner, self.adult, self.child)


NewFamily = Callable[..., Awaitable[Family]]


async def create_family(ctx: Context, *, pooled: bool = False) -> Family:
    """A family (owner, adult, child) with no points, written with plain SQL."""
    fid = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(3)]
    async with ctx.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO families (id, display_name, wallet_pooled) VALUES ($1, 'Rivera', $2)",
            fid,
            pooled,
        )
        for cid, role in zip(ids, ("owner", "adult", "child"), strict=True):
            # Distinct join times: the owner is the longest-standing member.
            await conn.execute(
                "INSERT INTO customers (id, family_id, username, display_name, role)"
                " VALUES ($1, $2, $3, 'M', $4)",
                cid,
                fid,
                f"u{cid.hex[:12]}",
                role,
            )
    return Family(fid, *ids)


@pytest.fixture
def new_family(ctx: Context) -> NewFamily:
    """A family (owner, adult, child), not pooled, with no points."""

    async def create(*, pooled: bool = False) -> Family:
        return await create_family(ctx, pooled=pooled)

    return create


async def complete_order(ctx: Context, cid: uuid.UUID, total_minor: int) -> str:
    """An order completion through the consumer's batch path (10 points per dollar)."""
    oid = f"ord-{uuid.uuid4().hex[:12]}"
    event = OrderEvent(
        str(uuid.uuid4()),
        Topic.COMPLETED,
        datetime.now(UTC),
        cid,
        oid,
        1,
        Completed(total_minor, "USD"),
    )
    result = await apply_batch(ctx, [Incoming(event, event.topic.value, 0, 0)])
    assert not result.rejected, result.rejected
    return oid


async def balances(ctx: Context, family: Family) -> dict[str, int]:
    """Every balance of the family: each member's own and the wallet's."""
    async with ctx.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT coalesce(customer_id::text, 'wallet') AS who, balance FROM loyalty_accounts"
            " WHERE family_id = $1 OR customer_id = ANY($2::uuid[])",
            family.id,
            list(family.members),
        )
    return {r["who"]: r["balance"] for r in rows}


async def ledger_consistent(ctx: Context) -> None:
    """Every balance equals the sum of its entries and none is negative."""
    async with ctx.pool.acquire() as conn:
        bad = await conn.fetch(
            "SELECT a.id, a.balance, coalesce(sum(p.points), 0) AS total FROM loyalty_accounts a"
            " LEFT JOIN loyalty_points p ON p.account_id = a.id GROUP BY a.id"
            " HAVING a.balance <> coalesce(sum(p.points), 0) OR a.balance < 0"
        )
    assert not bad, [dict(r) for r in bad]


async def code_of(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value.code(), caught.value.details() or ""
