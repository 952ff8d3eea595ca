"""Earning rules and tiers: pure, configured, unit-tested.

Points are earned per whole currency unit of an order's total; fractional
points are rounded by the configured rule. A tier follows from the points
earned over a trailing window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

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
