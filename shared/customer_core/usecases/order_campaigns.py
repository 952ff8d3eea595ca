"""Campaign points for completed orders, at the order's own time, within budgets.

Part of the consumer's batch transaction. Campaigns are those active at the
completion's `occurred_at` (never the processing time, so a late event earns
what the customer was promised, and every arrival order earns the same);
each award is granted within the campaign's total and per-customer budgets
(`reserve_budget` locks the campaign rows) and posted as an `earn` entry with
source `campaign`, keyed `order:{id}:campaign:{campaign id}`.

A customer's first order is their earliest completion by `occurred_at` (ties:
the smaller order id), whatever arrived first: a completion that arrives after
a later order took a first-order-only award takes it over (`not_first_orders`
gives the later award back, the batch reverses it).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from customer_core.db import Conn
from customer_core.db import campaign_budgets as campaign_budgets_db
from customer_core.db import campaigns as campaigns_db
from customer_core.db import order_campaigns as facts_db
from customer_core.db import order_points as db
from customer_core.domain.campaigns import Campaign, OrderFacts, campaign_awards
from customer_core.domain.loyalty import LedgerEntry
from customer_core.domain.order_events import Change, Completed, OrderState


def _when(change: Change) -> tuple[datetime, str]:
    # Which of a customer's orders came first: by the order's own time, then id.
    return change.event.occurred_at, change.event.order_id


async def award_entries(
    conn: Conn,
    completions: Sequence[Change],
    base: Mapping[str, int],
    accounts: Mapping[uuid.UUID, tuple[uuid.UUID, str]],
    states: Mapping[str, OrderState],
    family_of: Mapping[uuid.UUID, uuid.UUID],
) -> list[LedgerEntry]:
    """Ledger entries for the campaign awards the completions earn (budgets reserved)."""
    if not completions:
        return []
    times = [c.event.occurred_at for c in completions]
    if not await facts_db.campaigns_overlap(conn, min(times), max(times)):
        return []
    customers = {c.event.customer_id for c in completions}
    recorded = await facts_db.first_completions(conn, customers)
    sizes = await facts_db.family_sizes(conn, {family_of[c] for c in customers if c in family_of})
    active: dict[object, list[Campaign]] = {}
    first_seen: set[uuid.UUID] = set()
    awards = []
    for change in sorted(completions, key=_when):
        ev = change.event
        body = ev.body
        if not isinstance(body, Completed) or ev.customer_id not in accounts:
            continue
        if ev.occurred_at not in active:
            active[ev.occurred_at] = await campaigns_db.load_active(conn, ev.occurred_at)
        items = body.items or states[ev.order_id].items
        family = family_of.get(ev.customer_id)
        earliest = recorded.get(ev.customer_id)
        first = ev.customer_id not in first_seen and (earliest is None or _when(change) < earliest)
        first_seen.add(ev.customer_id)
        facts = OrderFacts(
            customer_id=ev.customer_id,
            family_id=family,
            order_id=ev.order_id,
            occurred_at=ev.occurred_at,
            total_minor=body.total_minor,
            currency_code=body.currency_code,
            drink_ids=tuple(i.drink_id for i in items),
            tier=accounts[ev.customer_id][1],
            is_first_order=first,
            is_family_member=sizes.get(family, 0) > 1 if family else False,
            base_points=base.get(ev.order_id, 0),
        )
        awards += campaign_awards(active[ev.occurred_at], facts)
    granted = await campaign_budgets_db.reserve_budget(conn, awards)
    return [
        LedgerEntry(
            account_id=accounts[a.customer_id][0],
            member_id=a.customer_id,
            kind="earn",
            points=a.points,
            reason=f"campaign {a.campaign_name or a.campaign_key} on order {a.order_id}",
            source="campaign",
            source_ref=a.order_id,
            campaign_id=a.campaign_id,
            idempotency_key=f"order:{a.order_id}:campaign:{a.campaign_id}",
        )
        for a in granted
    ]


async def not_first_orders(conn: Conn, completions: Sequence[Change]) -> list[db.EarnedEntry]:
    """First-order-only awards of orders that a completion in this batch precedes."""
    if not completions:
        return []
    if not await facts_db.first_order_campaigns_after(
        conn, min(c.event.occurred_at for c in completions)
    ):
        return []
    earliest: dict[uuid.UUID, tuple[datetime, str]] = {}
    for change in completions:
        cid = change.event.customer_id
        if cid not in earliest or _when(change) < earliest[cid]:
            earliest[cid] = _when(change)
    recorded = await facts_db.first_completions(conn, earliest)
    late = {c: at for c, at in earliest.items() if c in recorded and at < recorded[c]}
    return await facts_db.later_first_order_awards(conn, late)
