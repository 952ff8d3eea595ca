"""Live statistics and the activity feed as domain values: pure, stdlib only.

A `StatsSnapshot` is what WatchCustomerStats sends; two snapshots are equal
when a client would see no difference, which is how "no change sends nothing"
is decided (the time it was read is not part of the comparison).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

TOP_DRINKS = 5
PEAK_HOURS = 5
HOURS_PER_WEEK = 168

# The activity kinds the feed carries (ActivityKind without the prefix, lower-case).
ACTIVITY_KINDS = (
    "order_placed",
    "order_completed",
    "order_cancelled",
    "points_earned",
    "reward_redeemed",
    "reward_reversed",
    "tier_changed",
    "campaign_bonus",
    "points_adjusted",
    "points_expired",
    "wallet_changed",
)


@dataclass(frozen=True)
class DrinkCount:
    drink_id: str
    drink_name: str
    count: int


@dataclass(frozen=True)
class PeakHour:
    day_of_week: int  # 1 = Monday .. 7 = Sunday (ISO), UTC
    hour: int  # 0..23, UTC
    count: int


@dataclass(frozen=True)
class StatsSnapshot:
    customer_id: uuid.UUID
    order_count: int = 0
    completed_count: int = 0
    cancelled_count: int = 0
    total_spent_minor: int = 0
    currency_code: str = ""
    payment_count: int = 0
    top_drinks: tuple[DrinkCount, ...] = ()
    peak_hours: tuple[PeakHour, ...] = ()
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    points_balance: int = 0
    tier: str = "green"
    read_at: datetime | None = field(default=None, compare=False)


def peak_hour(hour_of_week: int, count: int) -> PeakHour:
    """Hour of week (0 = Monday 00:00 UTC .. 167) as ISO day of week and hour."""
    if not 0 <= hour_of_week < HOURS_PER_WEEK:
        raise ValueError(f"hour of week out of range: {hour_of_week}")
    return PeakHour(day_of_week=hour_of_week // 24 + 1, hour=hour_of_week % 24, count=count)


def rank_drinks(drinks: list[DrinkCount], limit: int = TOP_DRINKS) -> tuple[DrinkCount, ...]:
    """Most ordered first; ties by drink id, so the order is stable between reads."""
    return tuple(sorted(drinks, key=lambda d: (-d.count, d.drink_id))[:limit])


def rank_hours(hours: list[tuple[int, int]], limit: int = PEAK_HOURS) -> tuple[PeakHour, ...]:
    """(hour of week, count) pairs, busiest first; ties by the earlier hour of the week."""
    ranked = sorted((h for h in hours if h[1] > 0), key=lambda h: (-h[1], h[0]))[:limit]
    return tuple(peak_hour(how, count) for how, count in ranked)


def refresh_delay(last_refresh: float | None, now: float, interval: float) -> float:
    """Seconds to wait before re-reading a customer's statistics after a notice.

    The first notice after a quiet spell is served at once (leading edge);
    further notices inside `interval` fold into one read at its end, so a burst
    costs at most one read and one update per customer per interval.
    """
    if last_refresh is None:
        return 0.0
    return max(0.0, last_refresh + interval - now)
