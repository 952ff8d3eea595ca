"""A cancelled order's campaign points go back into the campaign's budgets, a skipped entry
consumes none, and first-order bonuses follow the orders' own times, not arrival."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

from customer_core.context import Context
from customer_core.db import campaigns as campaigns_db
from customer_core.domain.campaign_spec import campaign_from_spec
from customer_core.domain.campaigns import Phase
from customer_core.usecases import campaigns
from customer_core.usecases.events import apply_batch
from tests.integration.consumer.conftest import make_customers
from tests.integration.consumer.test_campaigns import START, ledger, order


async def add(ctx: Context, name: str, budget: dict[str, int], **eligibility: bool) -> uuid.UUID:
    spec: dict[str, object] = {
        "displayName": name,
        "window": {"start": "2025-07-01T00:00:00Z", "end": "2025-08-01T00:00:00Z"},
        "effect": {"bonusPoints": 40},
        "budget": budget,
    }
    if eligibility:
        spec["eligibility"] = eligibility
    cid = uuid.uuid4()
    campaign = campaign_from_spec(f"default/{name}", spec, id=cid)
    async with ctx.pool.acquire() as conn:
        await campaigns_db.insert_campaign(conn, "default", name, campaign, spec)
    return cid


async def status(ctx: Context, name: str) -> campaigns.CampaignStatus:
    async with ctx.pool.acquire() as conn:
        row = await campaigns_db.fetch_live(conn, "default", name)
    assert row is not None
    return campaigns.status_of(row, START + timedelta(days=10))


def campaign_points(rows: list[tuple]) -> int:
    return sum(points for _, source, points, _ in rows if source == "campaign")


async def test_a_cancelled_orders_campaign_points_come_back_to_the_budgets(ctx: Context):
    await add(ctx, "capped", {"totalPoints": 40, "perCustomerPoints": 40})
    [ann] = await make_customers(ctx, 1)
    await apply_batch(ctx, order(ann, START + timedelta(days=1), cancel=True))
    seen = await status(ctx, "capped")
    assert (seen.points_awarded, seen.customers_reached, seen.budget_left) == (0, 0, 40)
    assert seen.phase is Phase.ACTIVE
    # The customer orders again and gets the bonus the cancelled order gave back.
    await apply_batch(ctx, order(ann, START + timedelta(days=2)))
    assert campaign_points(await ledger(ctx, ann)) == 40
    seen = await status(ctx, "capped")
    assert (seen.points_awarded, seen.customers_reached, seen.phase) == (40, 1, Phase.EXHAUSTED)


async def test_cancellation_first_then_completion_gives_the_budget_back_too(ctx: Context):
    await add(ctx, "capped", {"totalPoints": 1000})
    [bo] = await make_customers(ctx, 1)
    events = order(bo, START + timedelta(days=1), cancel=True)
    await apply_batch(ctx, events[2:])
    await apply_batch(ctx, events[:2])
    seen = await status(ctx, "capped")
    assert (seen.points_awarded, seen.customers_reached) == (0, 0)


async def test_an_entry_already_in_the_ledger_consumes_no_budget(ctx: Context):
    cid = await add(ctx, "capped", {"totalPoints": 1000})
    [cy] = await make_customers(ctx, 1)
    events = order(cy, START + timedelta(days=1))
    oid = events[0].event.order_id
    async with ctx.pool.acquire() as conn:
        # The entry this completion would post is already there (posted once before).
        account = uuid.uuid4()
        await conn.execute(
            "INSERT INTO loyalty_accounts (id, customer_id) VALUES ($1, $2)", account, cy
        )
        await conn.execute(
            "INSERT INTO loyalty_points (account_id, member_id, kind, points, reason, source,"
            " source_ref, campaign_id, idempotency_key) VALUES ($1, $2, 'earn', 40, 'x',"
            " 'campaign', $3, $4, $5)",
            account,
            cy,
            oid,
            cid,
            f"order:{oid}:campaign:{cid}",
        )
        await conn.execute("UPDATE loyalty_accounts SET balance = 40 WHERE id = $1", account)
    await apply_batch(ctx, events)
    seen = await status(ctx, "capped")
    assert (seen.points_awarded, seen.customers_reached) == (0, 0)


async def test_the_first_order_bonus_goes_to_the_earliest_order_whatever_arrives_first(
    ctx: Context,
):
    await add(ctx, "welcome", {"perCustomerPoints": 1000}, firstOrderOnly=True)
    [di, ed] = await make_customers(ctx, 2)
    results = {}
    for who, arrival in ((di, "early-first"), (ed, "late-first")):
        early = order(who, START + timedelta(days=1))
        late = order(who, START + timedelta(days=2))
        batches = [early, late] if arrival == "early-first" else [late, early]
        for batch in batches:
            await apply_batch(ctx, batch)
        async with ctx.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT source_ref, sum(points) AS net FROM loyalty_points"
                " WHERE source = 'campaign' AND member_id = $1 GROUP BY source_ref",
                who,
            )
        net = {r["source_ref"]: r["net"] for r in rows}
        results[arrival] = (net.get(early[0].event.order_id, 0), net.get(late[0].event.order_id, 0))
    assert results == {"early-first": (40, 0), "late-first": (40, 0)}
    seen = await status(ctx, "welcome")
    assert (seen.points_awarded, seen.customers_reached) == (80, 2)


async def test_every_arrival_order_of_two_orders_gives_the_same_first_order_award(ctx: Context):
    await add(ctx, "welcome", {"perCustomerPoints": 1000}, firstOrderOnly=True)
    for cancel_first in (False, True):
        for arrival in itertools.permutations(range(3 if cancel_first else 2)):
            [fay] = await make_customers(ctx, 1)
            early = order(fay, START + timedelta(days=1), cancel=cancel_first)
            late = order(fay, START + timedelta(days=2))
            # Placements first; then the completions (and the cancellation) one batch each.
            await apply_batch(ctx, [early[0], late[0]])
            pieces = [early[1], late[1], *early[2:]]
            for i in arrival:
                await apply_batch(ctx, [pieces[i]])
            async with ctx.pool.acquire() as conn:
                net = dict(
                    await conn.fetch(
                        "SELECT source_ref, sum(points)::bigint FROM loyalty_points"
                        " WHERE source = 'campaign' AND member_id = $1 GROUP BY source_ref",
                        fay,
                    )
                )
                kept = await conn.fetchval(
                    "SELECT coalesce(sum(points), 0) FROM campaign_customer_awards"
                    " WHERE customer_id = $1",
                    fay,
                )
                history = dict(
                    await conn.fetch(
                        "SELECT order_id, points_earned FROM order_history WHERE customer_id = $1",
                        fay,
                    )
                )
            e, la = early[0].event.order_id, late[0].event.order_id
            want = 0 if cancel_first else 40
            seen = (net.get(e, 0), net.get(la, 0), kept, history[e], history[la])
            assert seen == (want, 0, want, 100 + want if not cancel_first else 0, 100), (
                cancel_first,
                arrival,
                seen,
            )
