"""Points for a batch of order changes: earn on completion, reverse on cancellation, tiers.

Part of the consumer's batch transaction (customer_core.usecases.events).
Every ledger entry's idempotency key derives from the order
(`order:{id}:earn`, its reverse `order:{id}:earn:reverse`), so whatever order
the events arrive in, and however often, an order earns once and a cancelled
order gives back exactly what it earned, from wherever pooling and unpooling
moved the points since (as far as the family still has them: a balance never
goes negative), and its campaign points go back into the campaigns' budgets.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from customer_core import notices
from customer_core.config import Settings
from customer_core.db import Conn
from customer_core.db import accounts as accounts_db
from customer_core.db import campaign_budgets as campaign_budgets_db
from customer_core.db import loyalty as loyalty_db
from customer_core.db import order_points as db
from customer_core.db import owed as owed_db
from customer_core.domain.loyalty import (
    EarningRules,
    LedgerEntry,
    PostedEntry,
    TierRules,
    points_for_amount,
    tier_for,
    tier_window_start,
)
from customer_core.domain.order_events import Change, Completed, OrderState
from customer_core.domain.wallet import take_back
from customer_core.notices import Activity
from customer_core.usecases import order_campaigns, order_holds


@dataclass
class PointsOutcome:
    # Net points each order's entries moved in this batch (earned less reversed).
    earned_by_order: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    activities: list[Activity] = field(default_factory=list)
    changed: dict[uuid.UUID, set[str]] = field(default_factory=lambda: defaultdict(set))
    # Who sees the balances the batch may move (every member of a pooled wallet).
    viewers: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)


async def settle(
    conn: Conn,
    settings: Settings,
    changes: Sequence[Change],
    initial: Mapping[str, OrderState],
    states: Mapping[str, OrderState],
    family_of: Mapping[uuid.UUID, uuid.UUID],
) -> PointsOutcome:
    out = PointsOutcome()
    completions = [c for c in changes if c.completed]
    # A reversal falls due only when the batch completed or cancelled the order:
    # look at those, not at every order the batch touched.
    ended = {c.event.order_id for c in changes if c.completed or c.cancelled}
    reversals = sorted(
        oid for oid in ended if states[oid].reversal_due and not initial[oid].reversal_due
    )
    customers = {c.event.customer_id for c in completions}
    customers |= {states[oid].customer_id for oid in reversals}
    cancelled = {c.event.order_id for c in changes if c.cancelled}
    accounts: dict[uuid.UUID, tuple[uuid.UUID, str]] = {}
    taken_over: list[db.EarnedEntry] = []
    locked: frozenset[uuid.UUID] = frozenset()
    if customers:
        # Reads first (no row lock yet): where each customer earns, and which
        # first-order awards an earlier completion now takes over.
        accounts = await accounts_db.batch_accounts(conn, customers)
        taken_over = await order_campaigns.not_first_orders(conn, completions)
    if customers or cancelled:
        # Every account the batch may move, in id order, before any approval, hold,
        # balance or campaign row is touched: the one global lock order
        # (docs/wallet.md, Concurrency). It covers every account of the families
        # whose earnings are reversed (a reversal follows pooling transfers), so
        # `_reverse` takes no account lock of its own.
        mine = {a for a, _ in accounts.values()} | {e.account_id for e in taken_over}
        reversing = {states[oid].customer_id for oid in reversals}
        reversing |= {e.member_id for e in taken_over if e.member_id is not None}
        lock = await db.lock_batch_accounts(conn, mine, cancelled, reversals, reversing)
        out.viewers, locked = lock.viewers, lock.accounts
    # Approvals, then redemption rows, after the accounts (the global order).
    await order_holds.end_pending(conn, changes, out.changed)
    await order_holds.settle_holds(conn, changes, states, out.changed)
    if not customers:
        return out
    # Before awarding: a first-order award given back frees budget for the order
    # that really came first.
    await _reverse(
        conn,
        taken_over,
        {e.order_id: f"order {e.order_id} was not the first order" for e in taken_over},
        locked,
        out,
    )
    entries = _earn_entries(settings, completions, accounts)
    base = {e.source_ref or "": e.points for e in entries}
    entries += await order_campaigns.award_entries(
        conn, completions, base, accounts, states, family_of
    )
    posted = await loyalty_db.post_entries(conn, entries, locked)
    # A campaign entry whose key was already in the ledger was budgeted before:
    # what `award_entries` reserved for it now goes back.
    kept = {e.idempotency_key for e in posted}
    await campaign_budgets_db.give_back(
        conn, campaign_budgets_db.budget_of([e for e in entries if e.idempotency_key not in kept])
    )
    for e in posted:
        assert e.source_ref is not None
        assert e.member_id is not None
        out.earned_by_order[e.source_ref] += e.points
        out.changed[e.member_id].add(notices.POINTS)
        out.activities.append(_activity(e, family_of))
    if reversals:
        earned = await db.earned_for_orders(conn, reversals)
        why = {oid: f"order {oid} cancelled" for oid in reversals}
        await _reverse(conn, earned, why, locked, out)
    # The batch writes its own orders; an order outside it is updated here.
    await db.add_order_points(
        conn, {o: out.earned_by_order.pop(o) for o in list(out.earned_by_order) if o not in states}
    )
    touched = {accounts[c][0] for c in customers if c in accounts}
    await _evaluate_tiers(conn, settings, touched, accounts, family_of, out)
    return out


def _earn_entries(
    settings: Settings,
    completions: Sequence[Change],
    accounts: Mapping[uuid.UUID, tuple[uuid.UUID, str]],
) -> list[LedgerEntry]:
    rules = EarningRules(settings.loyalty.points_per_unit, settings.loyalty.rounding)
    entries = []
    for change in completions:
        ev = change.event
        body = ev.body
        assert isinstance(body, Completed)
        base = points_for_amount(body.total_minor, body.currency_code, rules)
        if base > 0 and ev.customer_id in accounts:
            entries.append(
                LedgerEntry(
                    account_id=accounts[ev.customer_id][0],
                    member_id=ev.customer_id,
                    kind="earn",
                    points=base,
                    reason=f"order {ev.order_id}",
                    source="order",
                    source_ref=ev.order_id,
                    idempotency_key=f"order:{ev.order_id}:earn",
                )
            )
    return entries


async def _reverse(
    conn: Conn,
    earned: Sequence[db.EarnedEntry],
    why: Mapping[str, str],
    locked: frozenset[uuid.UUID],
    out: PointsOutcome,
) -> None:
    """Take back `earned` from wherever the points are now; campaigns get their budget back.

    Pooling and unpooling move a member's points between their own account and
    the family's wallet, so each entry is taken from the member's current
    account first, then the family's other accounts (domain.wallet.take_back).
    The first entry of a reversal is keyed `{earn key}:reverse`, any further
    ones `{earn key}:reverse:{n}`. Only accounts in `locked` (the batch's upfront
    lock, which takes every account of these members' families) are taken from.
    """
    if not earned:
        return
    members = {e.member_id for e in earned if e.member_id is not None}
    family, balances = await db.family_accounts(
        conn, members, {e.account_id for e in earned}, locked
    )
    entries = []
    owed: list[owed_db.Owed] = []
    owners: dict[uuid.UUID, uuid.UUID | None] = {}
    for e in earned:
        accounts = sorted(
            family.get(e.member_id, []) if e.member_id else [],
            key=lambda a: (not a.current, not a.wallet, str(a.owner)),
        )
        owners.update({a.id: a.owner for a in accounts})
        order = [a.id for a in accounts]
        if e.account_id not in order:
            order.append(e.account_id)
        takes = take_back(e.points, [(a, balances.get(a, 0)) for a in order])
        short = e.points - sum(t for _, t in takes)
        if short > 0 and e.member_id is not None:
            # Held points come back later: the rest is taken then (db.owed).
            owed.append(
                owed_db.Owed(
                    e.idempotency_key, e.member_id, e.order_id, e.source, e.campaign_id, short
                )
            )
        for n, (account_id, take) in enumerate(takes):
            balances[account_id] -= take
            entries.append(
                LedgerEntry(
                    account_id=account_id,
                    member_id=e.member_id,
                    kind="reverse",
                    points=-take,
                    reason=why[e.order_id],
                    source=e.source,
                    source_ref=e.order_id,
                    campaign_id=e.campaign_id,
                    idempotency_key=f"{e.idempotency_key}:reverse" + (f":{n}" if n else ""),
                )
            )
    posted = await loyalty_db.post_entries(conn, entries, locked)
    for p in posted:
        assert p.source_ref is not None
        out.earned_by_order[p.source_ref] += p.points
        for who in (p.member_id, owners.get(p.account_id)):
            if who is not None:
                out.changed[who].add(notices.POINTS)
    await owed_db.record(conn, owed)
    await campaign_budgets_db.give_back(conn, campaign_budgets_db.budget_of(posted))


async def _evaluate_tiers(
    conn: Conn,
    settings: Settings,
    account_ids: set[uuid.UUID],
    accounts: Mapping[uuid.UUID, tuple[uuid.UUID, str]],
    family_of: Mapping[uuid.UUID, uuid.UUID],
    out: PointsOutcome,
) -> None:
    if not account_ids:
        return
    loyalty = settings.loyalty
    rules = TierRules(loyalty.gold_points, loyalty.reserve_points, loyalty.tier_window_days)
    now = datetime.now(UTC)
    since = tier_window_start(now, rules)
    current = await accounts_db.batch_window_points(conn, account_ids, since)
    new = {aid: tier_for(pts, rules).value for aid, (tier, pts) in current.items()}
    changed = {aid: t for aid, t in new.items() if t != current[aid][0]}
    await db.set_tiers(conn, changed)
    for customer_id, (account_id, _) in accounts.items():
        if account_id in changed:
            out.changed[customer_id].add(notices.TIER)
            out.activities.append(
                Activity(
                    kind="tier_changed",
                    customer_id=customer_id,
                    family_id=family_of.get(customer_id),
                    tier=changed[account_id],
                    occurred_at=now,
                )
            )


def _activity(e: PostedEntry, family_of: Mapping[uuid.UUID, uuid.UUID]) -> Activity:
    assert e.member_id is not None
    # When the entry was written (the transaction's time): no clock read per activity.
    at = e.create_time or datetime.now(UTC)
    return Activity(
        kind="campaign_bonus" if e.source == "campaign" else "points_earned",
        customer_id=e.member_id,
        family_id=family_of.get(e.member_id),
        order_id=e.source_ref or "",
        points=e.points,
        campaign=str(e.campaign_id) if e.campaign_id else "",
        occurred_at=at,
    )
