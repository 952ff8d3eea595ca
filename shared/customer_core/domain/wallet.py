"""The family wallet's rules: who decides, the unpooling split, transfers, weekly caps.

Pooling moves points between a member's own account and the family's wallet
with `transfer` entries that name the member, two per member (out of one
account, into the other), so every switch leaves the sum of all balances as it
was. The unpooling split is stated in the proto (SetFamilyWalletRequest).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from customer_core.domain.customers import Role
from customer_core.domain.loyalty import LedgerEntry
from customer_core.errors import InvalidArgument

MAX_WEEKLY_CAP = 10_000_000
# Who may switch the wallet, approve a child's redemption or set a cap.
DECIDERS = frozenset({Role.OWNER, Role.ADULT})
# Whose role picks who gets the split's remainder, first match wins.
_REMAINDER_ORDER = (Role.OWNER, Role.ADULT, Role.CHILD)


@dataclass(frozen=True)
class Member:
    """A live family member as the wallet sees them."""

    id: uuid.UUID
    role: Role
    joined: datetime


@dataclass(frozen=True)
class Approval:
    """A child's redemption waiting for (or decided by) an adult."""

    redemption_id: uuid.UUID
    family_id: uuid.UUID
    requested_by: uuid.UUID
    expires_at: datetime
    decision: str | None = None  # approved | declined | expired
    decided_by: uuid.UUID | None = None


def can_decide(role: Role) -> bool:
    return role in DECIDERS


def needs_approval(role: Role, pooled: bool) -> bool:
    """A child's redemption from a pooled wallet waits for an adult."""
    return pooled and role is Role.CHILD


def remainder_taker(members: Sequence[Member]) -> Member | None:
    """The longest-standing owner, else adult, else member; None for an empty family."""
    for role in _REMAINDER_ORDER:
        ranked = sorted((m for m in members if m.role is role), key=lambda m: (m.joined, m.id))
        if ranked:
            return ranked[0]
    return None


def split_pool(
    balance: int, contributions: Mapping[uuid.UUID, int], taker: uuid.UUID
) -> dict[uuid.UUID, int]:
    """Each member's share of `balance`: proportional to their positive contribution,
    rounded down; the remainder (all of it when nobody contributed) to `taker`.

    Shares are never negative and always add up to `balance`; members with a
    zero share are left out.
    """
    if balance < 0:
        raise ValueError("a wallet balance is never negative")
    weights = {m: max(c, 0) for m, c in contributions.items()}
    total = sum(weights.values())
    shares: dict[uuid.UUID, int] = {}
    if total > 0:
        for member, weight in weights.items():
            share = balance * weight // total
            if share:
                shares[member] = share
    rest = balance - sum(shares.values())
    if rest:
        shares[taker] = shares.get(taker, 0) + rest
    return shares


def _transfer(
    switch_id: int,
    account_id: uuid.UUID,
    member: uuid.UUID,
    points: int,
    reason: str,
    family_ref: str,
    direction: str,
) -> LedgerEntry:
    return LedgerEntry(
        account_id=account_id,
        member_id=member,
        kind="transfer",
        points=points,
        reason=reason,
        source="family",
        source_ref=family_ref,
        idempotency_key=f"wallet:{switch_id}:{member}:{direction}",
    )


def pool_entries(
    switch_id: int,
    wallet_id: uuid.UUID,
    family_ref: str,
    own: Sequence[tuple[uuid.UUID, uuid.UUID, int]],
) -> list[LedgerEntry]:
    """Move each (member, own account, balance) into the wallet: out of one, into the other."""
    entries: list[LedgerEntry] = []
    for member, account_id, balance in own:
        if balance <= 0:
            continue
        entries.append(
            _transfer(
                switch_id,
                account_id,
                member,
                -balance,
                "moved into the family wallet",
                family_ref,
                "out",
            )
        )
        entries.append(
            _transfer(
                switch_id,
                wallet_id,
                member,
                balance,
                "brought into the family wallet",
                family_ref,
                "in",
            )
        )
    return entries


def unpool_entries(
    switch_id: int,
    wallet_id: uuid.UUID,
    family_ref: str,
    shares: Mapping[uuid.UUID, int],
    own_accounts: Mapping[uuid.UUID, uuid.UUID],
) -> list[LedgerEntry]:
    """Give each member their share back: out of the wallet, into their own account."""
    entries: list[LedgerEntry] = []
    for member in sorted(shares):
        points = shares[member]
        if points <= 0:
            continue
        entries.append(
            _transfer(
                switch_id,
                wallet_id,
                member,
                -points,
                "split out of the family wallet",
                family_ref,
                "out",
            )
        )
        entries.append(
            _transfer(
                switch_id,
                own_accounts[member],
                member,
                points,
                "share of the family wallet",
                family_ref,
                "in",
            )
        )
    return entries


# ---- Weekly spending caps ---------------------------------------------------------


def week_start(now: datetime) -> datetime:
    """Monday 00:00 UTC of `now`'s ISO week."""
    day = now.astimezone(UTC).date()
    monday = day - timedelta(days=day.weekday())
    return datetime(monday.year, monday.month, monday.day, tzinfo=UTC)


def check_weekly_points(points: int, field: str = "weekly_points") -> int:
    """0 (no cap) or 1..MAX_WEEKLY_CAP."""
    if not 0 <= points <= MAX_WEEKLY_CAP:
        raise InvalidArgument(field, f"must be 0 (no cap) .. {MAX_WEEKLY_CAP}, got {points}")
    return points


def over_cap(cap: int | None, spent: int, cost: int) -> bool:
    """Whether spending `cost` more this week would pass the cap (None: no cap)."""
    return cap is not None and spent + cost > cap


# ---- Taking back what a cancelled order earned ------------------------------------


def take_back(
    points: int, balances: Sequence[tuple[uuid.UUID, int]]
) -> list[tuple[uuid.UUID, int]]:
    """(account, points) to take for a reversal of `points`, from `balances` in order.

    The accounts are where the earnings may be now, the member's current one
    first (pooling moved them into the wallet, unpooling out to the members):
    each gives what it has until `points` are back, so the family's total
    drops by exactly what the order earned unless the family no longer has it
    (spent points stay spent; no balance goes below zero).
    """
    out = []
    left = points
    for account, balance in balances:
        if left <= 0:
            break
        take = min(left, balance)
        if take > 0:
            out.append((account, take))
            left -= take
    return out
