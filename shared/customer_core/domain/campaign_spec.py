"""A RewardCampaign's `spec` (as kubectl or the CLI gives it) into a `Campaign`.

The CRD schema rejects most bad specs before they reach us; this is the full
check, so the operator and the CLI (which has no API server in front of it)
refuse the same things, each with the dotted path of the offending field.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from customer_core.domain.campaigns import DRINK_CATEGORIES, WEEKDAYS, Campaign
from customer_core.errors import InvalidArgument

TIERS = ("green", "gold", "reserve")
MAX_MULTIPLIER = Decimal(10)
MAX_BONUS = 100_000
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def campaign_from_spec(
    key: str, spec: Mapping[str, Any], *, id: uuid.UUID, generation: int = 1
) -> Campaign:
    """Parse and check a whole spec; raise InvalidArgument naming the first bad field."""
    if not isinstance(spec, Mapping):
        raise InvalidArgument("spec", "must be an object")
    window = _mapping(spec, "window", required=True)
    zone = _zone(window.get("timeZone", "UTC"))
    starts_at = _instant(window.get("start"), zone, "spec.window.start")
    ends_at = _instant(window.get("end"), zone, "spec.window.end")
    if ends_at <= starts_at:
        raise InvalidArgument("spec.window.end", "must be after spec.window.start")
    effect = _mapping(spec, "effect", required=True)
    multiplier = _multiplier(effect.get("multiplier", 1))
    bonus = _int(effect.get("bonusPoints", 0), "spec.effect.bonusPoints", 0, MAX_BONUS)
    if multiplier == 1 and bonus == 0:
        raise InvalidArgument("spec.effect", "needs a multiplier above 1 or a bonusPoints above 0")
    eligibility = _mapping(spec, "eligibility")
    minimum = _mapping(eligibility, "minOrderTotal", prefix="spec.eligibility")
    budget = _mapping(spec, "budget")
    total = _optional_int(budget.get("totalPoints"), "spec.budget.totalPoints")
    per_customer = _optional_int(budget.get("perCustomerPoints"), "spec.budget.perCustomerPoints")
    if total is not None and per_customer is not None and per_customer > total:
        raise InvalidArgument("spec.budget.perCustomerPoints", "must not exceed totalPoints")
    display_name = spec.get("displayName", "")
    if not isinstance(display_name, str) or not display_name.strip():
        raise InvalidArgument("spec.displayName", "is required")
    if len(display_name) > 200:
        raise InvalidArgument("spec.displayName", "must be at most 200 characters")
    return Campaign(
        id=id,
        key=key,
        display_name=display_name.strip(),
        starts_at=starts_at,
        ends_at=ends_at,
        time_zone=zone.key,
        hours=_hours(window.get("hours")),
        weekdays=_weekdays(window.get("weekdays", [])),
        multiplier=multiplier,
        bonus_points=bonus,
        tiers=_choices(eligibility.get("tiers", []), TIERS, "spec.eligibility.tiers"),
        drink_ids=_strings(eligibility.get("drinkIds", []), "spec.eligibility.drinkIds"),
        drink_categories=_choices(
            eligibility.get("drinkCategories", []),
            DRINK_CATEGORIES,
            "spec.eligibility.drinkCategories",
        ),
        min_order_total_minor=_int(
            minimum.get("amountMinor", 0), "spec.eligibility.minOrderTotal.amountMinor", 0, None
        ),
        min_order_currency=_currency(minimum.get("currencyCode")),
        first_order_only=_bool(eligibility.get("firstOrderOnly", False), "firstOrderOnly"),
        family_members_only=_bool(eligibility.get("familyMembersOnly", False), "familyMembersOnly"),
        budget_total=total,
        budget_per_customer=per_customer,
        paused=_bool(spec.get("paused", False), "paused", prefix="spec"),
        generation=generation,
    )


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > 63:
        raise InvalidArgument("metadata.name", "must be a DNS label (a-z, 0-9, '-', at most 63)")
    return name


def _mapping(
    parent: Mapping[str, Any], name: str, *, required: bool = False, prefix: str = "spec"
) -> Mapping[str, Any]:
    value = parent.get(name)
    if value is None:
        if required:
            raise InvalidArgument(f"{prefix}.{name}", "is required")
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{prefix}.{name}", "must be an object")
    return value


def _zone(value: Any) -> ZoneInfo:
    if not isinstance(value, str) or not value:
        raise InvalidArgument("spec.window.timeZone", "must be an IANA time zone name")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidArgument("spec.window.timeZone", f"unknown time zone {value!r}") from exc


def _instant(value: Any, zone: ZoneInfo, field: str) -> datetime:
    """An RFC 3339 instant, or a local date-time read in the campaign's time zone."""
    if value is None:
        raise InvalidArgument(field, "is required")
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidArgument(field, "must be a date-time like 2025-12-01T07:00") from exc
    else:
        raise InvalidArgument(field, "must be a date-time string")
    if parsed.tzinfo is None:
        # Through UTC and back, so a time skipped by a DST change lands after the gap.
        parsed = parsed.replace(tzinfo=zone).astimezone(UTC)
    return parsed.astimezone(UTC)


def _multiplier(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise InvalidArgument("spec.effect.multiplier", "must be a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidArgument("spec.effect.multiplier", "must be a number") from exc
    if not number.is_finite() or number < 1 or number > MAX_MULTIPLIER:
        raise InvalidArgument("spec.effect.multiplier", f"must be between 1 and {MAX_MULTIPLIER}")
    if number != number.quantize(Decimal("0.01")):
        raise InvalidArgument("spec.effect.multiplier", "must have at most 2 decimal places")
    return number.normalize()


def _int(value: Any, field: str, low: int, high: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(field, "must be a whole number")
    if value < low or (high is not None and value > high):
        limit = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidArgument(field, f"must be {limit}")
    return value


def _optional_int(value: Any, field: str) -> int | None:
    return None if value is None else _int(value, field, 1, None)


def _bool(value: Any, name: str, prefix: str = "spec.eligibility") -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument(f"{prefix}.{name}", "must be true or false")
    return value


def _strings(value: Any, field: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidArgument(field, "must be a list of non-empty strings")
    return frozenset(value)


def _choices(value: Any, allowed: tuple[str, ...], field: str) -> frozenset[str]:
    items = _strings(value, field)
    unknown = sorted(items - set(allowed))
    if unknown:
        raise InvalidArgument(field, f"unknown {unknown[0]!r}; one of {', '.join(allowed)}")
    return items


def _weekdays(value: Any) -> frozenset[int]:
    names = _choices(value, WEEKDAYS, "spec.window.weekdays")
    return frozenset(WEEKDAYS.index(name) for name in names)


def _hours(value: Any) -> tuple[time, time] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidArgument("spec.window.hours", "must be an object with start and end")
    start = _clock(value.get("start"), "spec.window.hours.start")
    end = _clock(value.get("end"), "spec.window.hours.end")
    if start == end:
        raise InvalidArgument("spec.window.hours.end", "must differ from start")
    return start, end


def _clock(value: Any, field: str) -> time:
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidArgument(field, "must be a 24-hour time like 07:30")
    return time(int(match[1]), int(match[2]))


def _currency(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[A-Z]{3}", value):
        raise InvalidArgument("spec.eligibility.minOrderTotal.currencyCode", "must be ISO 4217")
    return value
