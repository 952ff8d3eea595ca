"""The family wallet: switching pooling on and off, weekly caps, the demo family.

A switch locks the family row, then every account it moves points between
(in id order), so spenders queue behind it and see the balance it left. It is
refused while a redemption against those points is pending or held (see the
proto), so no hold is ever released into an account nobody spends from.
Child approvals and the cap check at spending time are in
`usecases.wallet_approvals`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from customer_core import notices
from customer_core.context import Context
from customer_core.db import Conn
from customer_core.db import accounts as accounts_db
from customer_core.db import customers as customers_db
from customer_core.db import families as families_db
from customer_core.db import loyalty as loyalty_db
from customer_core.db import wallet as db
from customer_core.domain import names
from customer_core.domain.customers import Customer, Family
from customer_core.domain.loyalty import Account, LedgerEntry
from customer_core.domain.wallet import (
    Member,
    can_decide,
    check_weekly_points,
    pool_entries,
    remainder_taker,
    split_pool,
    unpool_entries,
    week_start,
)
from customer_core.errors import FailedPrecondition, NotFound, PermissionDenied
from customer_core.telemetry import timed_query
from customer_core.usecases import idempotency
from customer_core.usecases.contention import retried_once
from customer_core.usecases.replies import DataclassCodec

WALLET_CHANGED = "wallet_changed"


async def decider(conn: Conn, customer_id: uuid.UUID, family_id: uuid.UUID) -> Customer:
    """The live owner or adult of the family acting; PermissionDenied otherwise."""
    who = await customers_db.fetch_customer(conn, customer_id)
    if who is None or who.deleted or who.family_id != family_id:
        raise PermissionDenied(
            f"{names.customer_name(customer_id)} is not a member of {names.family_name(family_id)}"
        )
    if not can_decide(who.role):
        raise PermissionDenied(
            f"{names.customer_name(customer_id)} is a {who.role.value}: "
            "only the family's owner or an adult may do this"
        )
    return who


# ---- Switching ------------------------------------------------------------------------


@dataclass(frozen=True)
class Switched:
    family: Family
    moved: dict[uuid.UUID, int]  # member -> points moved (into the wallet: +, out: -)


SWITCHED = DataclassCodec(Switched)


@retried_once
async def set_wallet(
    ctx: Context, family_id: uuid.UUID, pooled: bool, requested_by: uuid.UUID, key: str
) -> Switched:
    """Pool or unpool the family's points (rules in the proto).

    With a key, a retry answers what the first call did and changes nothing,
    even after someone else switched the wallet since (no stale intent)."""
    call = idempotency.Call.of(
        key, "SetFamilyWallet", f"{family_id}:{pooled}:{requested_by}".encode()
    )
    with timed_query("wallet.switch"):
        async with ctx.pool.acquire() as conn, conn.transaction():
            stored = await idempotency.begin(conn, call)
            if stored is not None:
                return SWITCHED.decode(stored)
            was = await db.lock_family(conn, family_id)
            if was is None:
                raise NotFound(names.family_name(family_id))
            await decider(conn, requested_by, family_id)
            members = await db.live_members(conn, family_id)
            wallet, own = await db.lock_accounts(conn, family_id, [m.id for m in members])
            if pooled:
                moved = await _pool(conn, family_id, wallet, own, was, requested_by)
            else:
                moved = await _unpool(conn, family_id, wallet, own, members, was, requested_by)
            if was != pooled:
                await db.set_pooled(conn, family_id, pooled)
            family = await families_db.fetch_family(conn, family_id)
            assert family is not None
            done = Switched(family, moved)
            # The family's name is in it: cleared when the family's last member is erased.
            owner = idempotency.Owner(family_id=family_id)
            await idempotency.finish(conn, call, SWITCHED.encode(done), owner)
    if was != pooled or moved:
        everyone = [m.id for m in members]
        await ctx.cache.invalidate(*everyone)
        activities = [
            notices.Activity(
                kind=WALLET_CHANGED, customer_id=m, family_id=family_id, points=moved.get(m, 0)
            )
            for m in everyone
        ]
        changed = frozenset({notices.POINTS, notices.TIER})
        await notices.publish(
            ctx.valkey, [notices.Notice(m, family_id, changed) for m in everyone], activities
        )
    return done


async def _refuse_open(conn: Conn, accounts: list[uuid.UUID], where: str) -> None:
    count = await db.open_redemptions(conn, accounts)
    if count:
        raise FailedPrecondition(
            f"{count} redemption(s) against {where} are pending approval or held: "
            "switch the wallet once they are settled"
        )


async def _pool(
    conn: Conn,
    family_id: uuid.UUID,
    wallet: Account,
    own: dict[uuid.UUID, Account],
    was: bool,
    requested_by: uuid.UUID,
) -> dict[uuid.UUID, int]:
    await _refuse_open(conn, [a.id for a in own.values()], "members' own points")
    moving = [(m, a.id, a.balance) for m, a in sorted(own.items()) if a.balance > 0]
    if was and not moving:
        return {}
    switch = await db.insert_switch(conn, family_id, "sweep" if was else "pool", requested_by)
    entries = pool_entries(switch, wallet.id, names.family_name(family_id), moving)
    await loyalty_db.post_entries(conn, entries)
    # The wallet's clock is its most recently active member's; the emptied
    # accounts keep theirs (a transfer is nobody's activity).
    clocks = [wallet.last_activity_at if wallet.balance else None]
    clocks += [own[m].last_activity_at for m, _, _ in moving]
    known = [c for c in clocks if c is not None]
    restore = {own[m].id: own[m].last_activity_at for m, _, _ in moving}
    await db.set_activity(conn, {**restore, wallet.id: max(known) if known else None})
    total = sum(p for _, _, p in moving)
    await db.set_switch_moved(conn, switch, total)
    return {m: p for m, _, p in moving}


async def _unpool(
    conn: Conn,
    family_id: uuid.UUID,
    wallet: Account,
    own: dict[uuid.UUID, Account],
    members: list[Member],
    was: bool,
    requested_by: uuid.UUID,
) -> dict[uuid.UUID, int]:
    await _refuse_open(conn, [wallet.id], "the family wallet")
    if not wallet.balance:
        if was:
            await db.insert_switch(conn, family_id, "unpool", requested_by)
        return {}
    taker = remainder_taker(members)
    if taker is None:
        raise FailedPrecondition(f"{names.family_name(family_id)} has no member to split to")
    # Switching off splits what members put in since pooling; a later sweep
    # returns stray points (refunds that came back here) to whoever they are for.
    contributed = await db.contributions(conn, family_id, wallet.id, since_pool=was)
    live = {m.id for m in members}
    shares = split_pool(
        wallet.balance, {m: c for m, c in contributed.items() if m in live}, taker.id
    )
    switch = await db.insert_switch(conn, family_id, "unpool" if was else "sweep", requested_by)
    own_ids = {m: own[m].id for m in shares}
    await loyalty_db.post_entries(
        conn, unpool_entries(switch, wallet.id, names.family_name(family_id), shares, own_ids)
    )
    at = wallet.last_activity_at
    clocks = {own[m].id: _later(own[m].last_activity_at, at) for m in shares}
    await db.set_activity(conn, {**clocks, wallet.id: at})
    await db.set_switch_moved(conn, switch, wallet.balance)
    return {m: -p for m, p in shares.items()}


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(a, b) if a and b else a or b


# ---- Weekly caps ------------------------------------------------------------------------


@dataclass(frozen=True)
class Cap:
    customer_id: uuid.UUID
    weekly_points: int  # 0: no cap
    spent_this_week: int
    week_start: datetime


CAP = DataclassCodec(Cap)


@retried_once
async def set_cap(
    ctx: Context, customer_id: uuid.UUID, weekly_points: int, set_by: uuid.UUID, key: str
) -> Cap:
    """Set (or with 0 remove) a member's weekly cap; set by an owner or adult of the family.

    With a key, a retry answers what the first call did and sets nothing."""
    check_weekly_points(weekly_points)
    call = idempotency.Call.of(
        key, "SetMemberSpendingCap", f"{customer_id}:{weekly_points}:{set_by}".encode()
    )
    now = datetime.now(UTC)
    async with ctx.pool.acquire() as conn, conn.transaction():
        stored = await idempotency.begin(conn, call)
        if stored is not None:
            return CAP.decode(stored)
        member = await customers_db.fetch_customer(conn, customer_id)
        if member is None or member.deleted:
            raise NotFound(names.customer_name(customer_id))
        await decider(conn, set_by, member.family_id)
        await db.set_cap(conn, customer_id, weekly_points, set_by)
        spent = await db.spent_since(conn, customer_id, week_start(now))
        cap = Cap(customer_id, weekly_points, spent, week_start(now))
        await idempotency.finish(conn, call, CAP.encode(cap))
    return cap


# ---- Demo data ---------------------------------------------------------------------------

DEMO_FAMILY = "demo-family-rivera"
# Opening points per demo member (by external id), posted once, before pooling.
DEMO_OPENING = {"demo-ana-rivera": 120, "demo-marco-rivera": 80, "demo-sofia-rivera": 40}


async def seed_demo_wallet(ctx: Context) -> str:
    """Give the Rivera family opening points once and pool them; a summary line."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        family = await families_db.fetch_family_by_external_id(conn, DEMO_FAMILY)
        if family is None:
            return "no Rivera family to pool"
        owner = None
        for external_id, points in DEMO_OPENING.items():
            member = await customers_db.fetch_customer_by_external_id(conn, external_id)
            if member is None:
                continue
            owner = owner or member.id
            if family.wallet_pooled:
                continue
            account = await accounts_db.account_for_customer(conn, member.id)
            assert account is not None
            await loyalty_db.post_entries(
                conn,
                [
                    LedgerEntry(
                        account.id,
                        member.id,
                        "adjust",
                        points,
                        "demo opening balance",
                        "operator",
                        None,
                        None,
                        f"demo:wallet:{external_id}:opening",
                    )
                ],
            )
    if owner is None:
        return "no Rivera members to pool"
    done = await set_wallet(ctx, family.id, True, owner, "")
    return f"the Rivera family wallet is pooled ({sum(done.moved.values())} points moved in)"
