"""What follows the wallet beyond the ledger: campaign caps per member, the activity feed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from customer_core import activity_streams, notices
from customer_core.context import Context
from customer_core.db import campaigns as campaigns_db
from customer_core.domain.campaign_spec import campaign_from_spec
from customer_core.domain.order_events import Completed, OrderEvent, Topic
from customer_core.usecases import rewards, wallet, wallet_approvals
from customer_core.usecases.events import Incoming, apply_batch
from tests.integration.wallet.conftest import FREE_COFFEE, NewFamily
from tests.support.ledger import give

START = datetime(2025, 7, 1, tzinfo=UTC)


async def test_a_campaigns_per_customer_cap_counts_each_member_of_a_pool(
    ctx: Context, new_family: NewFamily
) -> None:
    spec = {
        "displayName": "Double July",
        "window": {"start": "2025-07-01T00:00:00Z", "end": "2025-08-01T00:00:00Z"},
        "effect": {"multiplier": 2},
        "budget": {"perCustomerPoints": 150},
    }
    async with ctx.pool.acquire() as conn:
        await campaigns_db.insert_campaign(
            conn,
            "default",
            "double-july",
            campaign_from_spec("default/double-july", spec, id=uuid.uuid4()),
            spec,
        )
    fam = await new_family()
    await wallet.set_wallet(ctx, fam.id, True, fam.owner, "")
    for day, member in enumerate((fam.owner, fam.owner, fam.child, fam.child)):
        oid = f"ord-{uuid.uuid4().hex[:10]}"
        event = OrderEvent(
            str(uuid.uuid4()),
            Topic.COMPLETED,
            START + timedelta(days=day + 1),
            member,
            oid,
            1,
            Completed(1000, "USD"),
        )
        await apply_batch(ctx, [Incoming(event, event.topic.value, 0, 0)])
    async with ctx.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT p.member_id, sum(p.points) AS points FROM loyalty_points p"
            " JOIN loyalty_accounts a ON a.id = p.account_id"
            " WHERE a.family_id = $1 AND p.source = 'campaign' GROUP BY p.member_id",
            fam.id,
        )
    # Each member of the pooled wallet has a cap of their own: 100 + 50 each.
    assert {r["member_id"]: r["points"] for r in rows} == {fam.owner: 150, fam.child: 150}


async def test_wallet_events_reach_the_familys_activity_feed(
    ctx: Context, new_family: NewFamily
) -> None:
    fam = await new_family()
    await give(ctx, fam.adult, 300)
    await wallet.set_wallet(ctx, fam.id, True, fam.owner, "")
    asked = await rewards.redeem_reward(ctx, fam.child, FREE_COFFEE, "o-1", "k-1")
    await wallet_approvals.decline(ctx, asked.redemption.id, fam.adult, "not today", "")
    entries = await activity_streams.read_after(
        ctx.valkey, notices.family_stream(fam.id), notices.START_CURSOR, 100
    )
    kinds = [(e.activity.kind, e.activity.customer_id, e.activity.points) for e in entries]
    # The switch (one per member, with what moved), the child's request, the decline.
    assert kinds[:3] == [
        ("wallet_changed", m, p) for m, p in zip(fam.members, (0, 300, 0), strict=True)
    ]
    assert [k[:2] for k in kinds[3:]] == [("wallet_changed", fam.child)] * 2
