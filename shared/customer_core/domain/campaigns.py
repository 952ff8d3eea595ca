"""Reward campaigns: which campaigns an order earns, and how many points.

A campaign is active at an instant when the instant is inside its window and,
if it has recurring hours or weekdays, the wall-clock time in the campaign's
own time zone matches them. The order's own time decides, never the time it is
processed, so a late event earns what the customer was promised. Wall-clock
rules go through zoneinfo, so "07:00-10:00 in New York" stays 07:00-10:00 on
both sides of a DST change.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# Order events carry drink ids, not categories: a drink belongs to a category
# when one of the words of its id (split on "-" and "_") is one of these.
CATEGORY_WORDS: dict[str, frozenset[str]] = {
    "espresso": frozenset(
        {"espresso", "latte", "cappuccino", "americano", "macchiato", "mocha", "cortado", "flat"}
    ),
    "brewed": frozenset({"brewed", "drip", "pour", "filter"}),
    "cold": frozenset({"iced", "cold", "frappe", "frappuccino", "nitro"}),
    "tea": frozenset({"tea", "chai", "matcha"}),
    "oat-milk": frozenset({"oat"}),
    "plant-milk": frozenset({"oat", "almond", "soy", "coconut"}),
    "reserve": frozenset({"reserve"}),
}
# A chai or matcha latte is tea, not espresso.
CATEGORY_EXCLUDES: dict[str, frozenset[str]] = {"espresso": frozenset({"tea", "chai", "matcha"})}
DRINK_CATEGORIES = tuple(CATEGORY_WORDS)


class Phase(StrEnum):
    PENDING = "Pending"
    SCHEDULED = "Scheduled"
    ACTIVE = "Active"
    PAUSED = "Paused"
    EXHAUSTED = "Exhausted"
    ENDED = "Ended"
    INVALID = "Invalid"


@dataclass(frozen=True)
class Campaign:
    id: uuid.UUID
    key: str  # "namespace/name"
    display_name: str
    starts_at: datetime  # aware; inclusive
    ends_at: datetime  # aware; exclusive
    time_zone: str = "UTC"
    # Local wall-clock hours [start, end); end <= start means the span crosses midnight.
    hours: tuple[time, time] | None = None
    weekdays: frozenset[int] = frozenset()  # 0 = Monday; empty = every day
    multiplier: Decimal = Decimal(1)
    bonus_points: int = 0
    tiers: frozenset[str] = frozenset()  # empty = every tier
    drink_ids: frozenset[str] = frozenset()
    drink_categories: frozenset[str] = frozenset()
    min_order_total_minor: int = 0
    min_order_currency: str | None = None
    first_order_only: bool = False
    family_members_only: bool = False
    budget_total: int | None = None
    budget_per_customer: int | None = None
    paused: bool = False
    generation: int = 1


@dataclass(frozen=True)
class OrderFacts:
    customer_id: uuid.UUID
    family_id: uuid.UUID | None
    order_id: str
    occurred_at: datetime  # the order's own time, aware
    total_minor: int
    currency_code: str
    drink_ids: tuple[str, ...]
    tier: str
    is_first_order: bool
    is_family_member: bool
    base_points: int
    # Extra categories the caller knows of; those implied by drink ids are added.
    drink_categories: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Award:
    campaign_id: uuid.UUID
    campaign_key: str
    customer_id: uuid.UUID
    order_id: str
    points: int
    campaign_name: str = ""


@dataclass(frozen=True)
class CampaignState:
    """What the database knows of a campaign beyond its rules (for its phase)."""

    starts_at: datetime
    ends_at: datetime
    paused: bool
    budget_total: int | None
    points_awarded: int
    ended_at: datetime | None = None  # set when the resource was deleted


def categories_of(drink_id: str) -> frozenset[str]:
    words = set(drink_id.lower().replace("_", "-").split("-"))
    return frozenset(
        cat
        for cat, keys in CATEGORY_WORDS.items()
        if words & keys and not words & CATEGORY_EXCLUDES.get(cat, frozenset())
    )


def in_window(campaign: Campaign, at: datetime) -> bool:
    return campaign.starts_at <= at < campaign.ends_at


def matches_recurrence(campaign: Campaign, at: datetime) -> bool:
    """Whether `at` falls on the campaign's local weekdays and hours."""
    local = at.astimezone(ZoneInfo(campaign.time_zone))
    days = campaign.weekdays
    if campaign.hours is None:
        return not days or local.weekday() in days
    start, end = campaign.hours
    clock = local.time().replace(tzinfo=None)
    if start < end:
        return start <= clock < end and (not days or local.weekday() in days)
    # Overnight span: the part after midnight belongs to the day the span began.
    if clock >= start:
        return not days or local.weekday() in days
    if clock < end:
        return not days or (local.weekday() - 1) % 7 in days
    return False


def is_active(campaign: Campaign, at: datetime) -> bool:
    return not campaign.paused and in_window(campaign, at) and matches_recurrence(campaign, at)


def is_eligible(campaign: Campaign, order: OrderFacts) -> bool:
    if campaign.tiers and order.tier not in campaign.tiers:
        return False
    if campaign.first_order_only and not order.is_first_order:
        return False
    if campaign.family_members_only and not order.is_family_member:
        return False
    if order.total_minor < campaign.min_order_total_minor:
        return False
    currency = campaign.min_order_currency
    if currency and campaign.min_order_total_minor and order.currency_code.upper() != currency:
        return False
    if campaign.drink_ids or campaign.drink_categories:
        return _has_drink(campaign, order)
    return True


def _has_drink(campaign: Campaign, order: OrderFacts) -> bool:
    if campaign.drink_ids & set(order.drink_ids):
        return True
    categories = set(order.drink_categories)
    for drink_id in order.drink_ids:
        categories |= categories_of(drink_id)
    return bool(campaign.drink_categories & categories)


def points_for(campaign: Campaign, base_points: int) -> int:
    """Campaign points on top of the base: base*(multiplier-1) rounded down, plus the bonus."""
    extra = math.floor(Decimal(max(base_points, 0)) * (campaign.multiplier - 1))
    return max(extra, 0) + max(campaign.bonus_points, 0)


def campaign_awards(campaigns: Iterable[Campaign], order: OrderFacts) -> list[Award]:
    """Every award the order earns before budgets: one per active, eligible campaign."""
    awards = []
    for campaign in sorted(campaigns, key=lambda c: str(c.id)):
        if not is_active(campaign, order.occurred_at) or not is_eligible(campaign, order):
            continue
        points = points_for(campaign, order.base_points)
        if points > 0:
            awards.append(
                Award(
                    campaign_id=campaign.id,
                    campaign_key=campaign.key,
                    customer_id=order.customer_id,
                    order_id=order.order_id,
                    points=points,
                    campaign_name=campaign.display_name,
                )
            )
    return awards


def grant_within(want: int, total_left: int | None, customer_left: int | None) -> int:
    """Points granted of `want` given what is left of each budget (None = no cap)."""
    granted = want
    for left in (total_left, customer_left):
        if left is not None:
            granted = min(granted, max(left, 0))
    return max(granted, 0)


def phase_of(state: CampaignState, now: datetime) -> Phase:
    if state.ended_at is not None or now >= state.ends_at:
        return Phase.ENDED
    if state.paused:
        return Phase.PAUSED
    if state.budget_total is not None and state.points_awarded >= state.budget_total:
        return Phase.EXHAUSTED
    if now < state.starts_at:
        return Phase.SCHEDULED
    return Phase.ACTIVE


def next_change(state: CampaignState, now: datetime) -> datetime | None:
    """When the phase will next change by the clock alone (start or end of the window)."""
    for edge in (state.starts_at, state.ends_at):
        if now < edge:
            return edge
    return None
