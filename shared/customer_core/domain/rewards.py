"""Rewards and redemptions: the catalogue's rules and a redemption's life.

A redemption is a hold against an order. It starts `held` (its points already
left the balance through a `redeem` ledger entry); the order completing
`captures` it; the order being cancelled, the operator reversing it or its
timeout passing gives the points back (`released`, `refunded` once captured,
`expired` for the timeout), each through one `reverse` ledger entry.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from customer_core.domain.loyalty import Tier, tier_at_least
from customer_core.errors import InvalidArgument

MAX_ORDER_ID = 128
DISCOUNT_KINDS = ("amount_off", "percent_off", "free_drink")


class RedemptionState(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    HELD = "held"
    CAPTURED = "captured"
    RELEASED = "released"
    REFUNDED = "refunded"
    DECLINED = "declined"
    EXPIRED = "expired"


# States that keep an order's reward slot taken (one reward per order).
ACTIVE_STATES = (RedemptionState.PENDING_APPROVAL, RedemptionState.HELD, RedemptionState.CAPTURED)
# States after which the points are back in the balance: reversing again is a no-op.
RETURNED_STATES = (RedemptionState.RELEASED, RedemptionState.REFUNDED, RedemptionState.EXPIRED)


class Ineligible(StrEnum):
    """Why a reward cannot be redeemed now (values as in IneligibleReason, lower-case)."""

    INSUFFICIENT_POINTS = "insufficient_points"
    TIER_TOO_LOW = "tier_too_low"
    NOT_AVAILABLE = "not_available"
    ALREADY_REDEEMED_FOR_ORDER = "already_redeemed_for_order"
    NEEDS_APPROVAL = "needs_approval"


@dataclass(frozen=True)
class Reward:
    id: uuid.UUID
    display_name: str
    points_cost: int
    discount_kind: str  # amount_off | percent_off | free_drink
    discount_value: int = 0  # minor units (amount_off) or percent (percent_off)
    currency_code: str | None = None
    free_drink_id: str | None = None
    description: str = ""
    min_tier: Tier | None = None
    available_from: datetime | None = None
    available_until: datetime | None = None
    active: bool = True

    def available_at(self, now: datetime) -> bool:
        """Active and inside its availability window (bounds: from inclusive, until exclusive)."""
        if not self.active:
            return False
        if self.available_from is not None and now < self.available_from:
            return False
        return self.available_until is None or now < self.available_until


@dataclass(frozen=True)
class Redemption:
    id: uuid.UUID
    account_id: uuid.UUID
    customer_id: uuid.UUID
    reward_id: uuid.UUID
    order_id: str
    points: int
    state: RedemptionState
    request_hash: str
    hold_expires_at: datetime | None = None
    # The available balance right after the hold was placed (replayed as is).
    balance_after: int = 0
    create_time: datetime | None = None
    update_time: datetime | None = None


def ineligibility(
    reward: Reward, *, tier: Tier, balance: int, now: datetime, order_taken: bool
) -> Ineligible | None:
    """The first reason the reward cannot be redeemed, or None when it can.

    Checked in the order a customer can act on: a reward that is not offered
    now says so before a tier or balance question.
    """
    if not reward.available_at(now):
        return Ineligible.NOT_AVAILABLE
    if not tier_at_least(tier, reward.min_tier):
        return Ineligible.TIER_TOO_LOW
    if order_taken:
        return Ineligible.ALREADY_REDEEMED_FOR_ORDER
    if balance < reward.points_cost:
        return Ineligible.INSUFFICIENT_POINTS
    return None


def offered_to(reward: Reward, tier: Tier, now: datetime) -> bool:
    """Whether the reward is offered to a customer of this tier now (balance aside)."""
    return reward.available_at(now) and tier_at_least(tier, reward.min_tier)


def check_order_id(order_id: str, field: str = "order_id") -> str:
    """The Order Service's order id: 1..128 printable characters."""
    if not order_id:
        raise InvalidArgument(field, "required")
    if len(order_id) > MAX_ORDER_ID or not order_id.isprintable():
        raise InvalidArgument(field, f"must be 1..{MAX_ORDER_ID} printable characters")
    return order_id


def request_digest(customer_id: uuid.UUID, reward_id: uuid.UUID, order_id: str) -> str:
    """A digest of what a RedeemReward request asks, to recognise a reused key."""
    text = f"redeem\x1f{customer_id}\x1f{reward_id}\x1f{order_id}"
    return hashlib.sha256(text.encode()).hexdigest()
