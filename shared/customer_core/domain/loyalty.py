"""Earning rules and tiers: pure, configured, unit-tested.

Points are earned per whole currency unit of an order's total; fractional
points are rounded by the configured rule. A tier follows from the points
earned over a trailing window.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from customer_core.domain.values import quick_init

# Currencies whose minor unit is not 1/100 (ISO 4217 exponent 0 or 3).
_MINOR_PER_UNIT = {"JPY": 1, "KRW": 1, "VND": 1, "CLP": 1, "ISK": 1, "BHD": 1000, "KWD": 1000}


class Tier(StrEnum):
    GREEN = "green"
    GOLD = "gold"
    RESERVE = "reserve"


TIER_ORDER = (Tier.GREEN, Tier.GOLD, Tier.RESERVE)


@dataclass(frozen=True)
class EarningRules:
    points_per_unit: int = 10
    rounding: str = "floor"  # floor | round | ceil


@dataclass(frozen=True)
class TierRules:
    gold_points: int = 1500
    reserve_points: int = 5000
    window_days: int = 365


def minor_per_unit(currency_code: str) -> int:
    return _MINOR_PER_UNIT.get(currency_code.upper(), 100)


def points_for_amount(amount_minor: int, currency_code: str, rules: EarningRules) -> int:
    """Base points for spending `amount_minor`; never negative."""
    if amount_minor <= 0 or rules.points_per_unit <= 0:
        return 0
    exact = amount_minor * rules.points_per_unit / minor_per_unit(currency_code)
    if rules.rounding == "ceil":
        return math.ceil(exact)
    if rules.rounding == "round":
        # Half up, not banker's rounding: customers expect 2.5 -> 3.
        return math.floor(exact + 0.5)
    return math.floor(exact)


def tier_for(window_points: int, rules: TierRules) -> Tier:
    if window_points >= rules.reserve_points:
        return Tier.RESERVE
    if window_points >= rules.gold_points:
        return Tier.GOLD
    return Tier.GREEN


def next_tier(window_points: int, rules: TierRules) -> tuple[Tier | None, int]:
    """The tier above the current one and the points still needed (None, 0 at the top)."""
    current = tier_for(window_points, rules)
    if current is Tier.RESERVE:
        return None, 0
    if current is Tier.GOLD:
        return Tier.RESERVE, rules.reserve_points - window_points
    return Tier.GOLD, rules.gold_points - window_points


def tier_at_least(tier: Tier, minimum: Tier | None) -> bool:
    return minimum is None or TIER_ORDER.index(tier) >= TIER_ORDER.index(minimum)


# ---- The points ledger -------------------------------------------------------------

KINDS = ("earn", "redeem", "reverse", "expire", "adjust", "transfer")
SOURCES = ("order", "reward", "campaign", "operator", "system", "family")
# Kinds whose sign is fixed; reverse, adjust and transfer go either way.
_POSITIVE_KINDS = frozenset({"earn"})
_NEGATIVE_KINDS = frozenset({"redeem", "expire"})


@quick_init
@dataclass(frozen=True)
class LedgerEntry:
    """One append-only change of an account's balance.

    `points` is signed (positive adds). `member_id` is the customer who earned
    or spent the points (the account may be a family's pooled wallet).
    `idempotency_key` is unique across the whole ledger: posting an entry
    whose key is already there does nothing, so callers derive it from what
    caused the entry (`order:{id}:earn`, `redemption:{id}:redeem`, ...).
    """

    account_id: uuid.UUID
    member_id: uuid.UUID | None
    kind: str
    points: int
    reason: str
    source: str
    source_ref: str | None = None
    campaign_id: uuid.UUID | None = None
    idempotency_key: str = ""

    def check(self) -> None:
        """Raise ValueError unless the entry is well-formed (post_entries checks each).

        Programming errors, not user input: use cases validate requests first.
        Rows read back from the ledger are not checked again.
        """
        if self.kind not in KINDS:
            raise ValueError(f"unknown ledger kind {self.kind!r}")
        if self.source not in SOURCES:
            raise ValueError(f"unknown ledger source {self.source!r}")
        if self.points == 0:
            raise ValueError("a ledger entry must move at least one point")
        if self.kind in _POSITIVE_KINDS and self.points < 0:
            raise ValueError(f"a {self.kind} entry must be positive")
        if self.kind in _NEGATIVE_KINDS and self.points > 0:
            raise ValueError(f"a {self.kind} entry must be negative")
        if not self.idempotency_key:
            raise ValueError("a ledger entry needs an idempotency key")
        if not self.reason:
            raise ValueError("a ledger entry needs a reason")

    @property
    def earned(self) -> int:
        """What the entry adds to lifetime points (earn and positive adjust entries)."""
        return self.points if self.kind in ("earn", "adjust") and self.points > 0 else 0

    @property
    def is_activity(self) -> bool:
        """Whether the entry restarts the inactivity clock (expiry itself does not)."""
        return self.kind != "expire"


@quick_init
@dataclass(frozen=True)
class PostedEntry(LedgerEntry):
    """A ledger entry as stored: its increasing id and when it was written."""

    id: int = 0
    create_time: datetime | None = None
    # The RewardCampaign's `namespace/name` when campaign_id is set (read back only).
    campaign: str = ""


# ---- Accounts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """A loyalty account: a customer's own, or a family's pooled wallet."""

    id: uuid.UUID
    customer_id: uuid.UUID | None
    family_id: uuid.UUID | None
    balance: int = 0
    lifetime_points: int = 0
    last_activity_at: datetime | None = None

    @property
    def pooled(self) -> bool:
        return self.family_id is not None


@dataclass(frozen=True)
class Expiry:
    """The points that expire next, and when (none: 0 and None)."""

    points: int
    at: datetime | None


def expiry_for(balance: int, last_activity: datetime | None, expiry_days: int) -> Expiry:
    """Every available point expires `expiry_days` after the last activity.

    One clock per account (not per earn batch): any earn, redeem or adjustment
    restarts it, which is what "expire after inactivity" promises.
    """
    if balance <= 0 or last_activity is None:
        return Expiry(0, None)
    return Expiry(balance, last_activity + timedelta(days=expiry_days))


def tier_window_start(now: datetime, rules: TierRules) -> datetime:
    return now - timedelta(days=rules.window_days)


@dataclass(frozen=True)
class AccountSummary:
    """What GetLoyaltyAccount shows: balances, tier progress and the next expiry."""

    account: Account
    held_points: int
    tier: Tier
    tier_points: int
    next_tier: Tier | None
    points_to_next_tier: int
    expiry: Expiry
    member_contribution: int = 0


def summarize(
    account: Account,
    *,
    held: int,
    window_points: int,
    rules: TierRules,
    expiry_days: int,
    member_contribution: int = 0,
) -> AccountSummary:
    upper, missing = next_tier(window_points, rules)
    return AccountSummary(
        account=account,
        held_points=held,
        tier=tier_for(window_points, rules),
        tier_points=window_points,
        next_tier=upper,
        points_to_next_tier=missing,
        expiry=expiry_for(account.balance, account.last_activity_at, expiry_days),
        member_contribution=member_contribution,
    )
