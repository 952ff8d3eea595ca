"""Pure loyalty rules: ledger entries, expiry, tier progress, reward eligibility."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_core.domain.loyalty import (
    Account,
    LedgerEntry,
    Tier,
    TierRules,
    expiry_for,
    summarize,
)
from customer_core.domain.rewards import (
    Ineligible,
    Reward,
    check_order_id,
    ineligibility,
    request_digest,
)
from customer_core.errors import InvalidArgument

A, M = uuid.uuid4(), uuid.uuid4()
NOW = datetime(2026, 6, 1, tzinfo=UTC)
RULES = TierRules(gold_points=1500, reserve_points=5000, window_days=365)


def entry(kind: str, points: int, key: str = "k", reason: str = "r") -> LedgerEntry:
    return LedgerEntry(A, M, kind, points, reason, "order", None, None, key)


@pytest.mark.parametrize(
    ("kind", "points", "problem"),
    [
        ("earn", -5, "positive"),
        ("redeem", 5, "negative"),
        ("expire", 5, "negative"),
        ("bonus", 5, "unknown ledger kind"),
        ("adjust", 0, "at least one point"),
    ],
)
def test_malformed_entries_are_refused(kind: str, points: int, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        entry(kind, points).check()


def test_entries_need_a_key_and_a_reason() -> None:
    with pytest.raises(ValueError, match="idempotency key"):
        entry("earn", 1, key="").check()
    with pytest.raises(ValueError, match="reason"):
        entry("earn", 1, reason="").check()


def test_what_counts_as_earned_and_as_activity() -> None:
    assert entry("earn", 10).earned == 10
    assert entry("adjust", 7).earned == 7
    assert entry("adjust", -7).earned == 0
    assert entry("reverse", 100).earned == 0
    assert not entry("expire", -3).is_activity
    assert entry("redeem", -3).is_activity


def test_every_point_expires_after_the_inactivity_period() -> None:
    assert expiry_for(120, NOW, 180).points == 120
    assert expiry_for(120, NOW, 180).at == NOW + timedelta(days=180)
    assert expiry_for(0, NOW, 180).at is None
    assert expiry_for(50, None, 180).points == 0


@given(st.integers(0, 20_000))
def test_tier_progress_adds_up(window: int) -> None:
    s = summarize(
        Account(A, M, None, balance=5), held=0, window_points=window, rules=RULES, expiry_days=180
    )
    if s.next_tier is None:
        assert s.tier is Tier.RESERVE and s.points_to_next_tier == 0
    else:
        threshold = RULES.gold_points if s.next_tier is Tier.GOLD else RULES.reserve_points
        assert window + s.points_to_next_tier == threshold
        assert s.points_to_next_tier > 0


REWARD = Reward(
    uuid.uuid4(),
    "Free coffee",
    100,
    "free_drink",
    min_tier=Tier.GOLD,
    available_from=NOW - timedelta(days=1),
    available_until=NOW + timedelta(days=1),
)


@pytest.mark.parametrize(
    ("now", "tier", "balance", "taken", "expected"),
    [
        (NOW, Tier.GOLD, 100, False, None),
        (NOW, Tier.RESERVE, 500, False, None),
        (NOW, Tier.GOLD, 99, False, Ineligible.INSUFFICIENT_POINTS),
        (NOW, Tier.GREEN, 500, False, Ineligible.TIER_TOO_LOW),
        (NOW, Tier.GOLD, 500, True, Ineligible.ALREADY_REDEEMED_FOR_ORDER),
        (NOW + timedelta(days=1), Tier.GOLD, 500, False, Ineligible.NOT_AVAILABLE),
        (NOW - timedelta(days=2), Tier.GOLD, 500, False, Ineligible.NOT_AVAILABLE),
    ],
)
def test_eligibility(
    now: datetime, tier: Tier, balance: int, taken: bool, expected: Ineligible | None
) -> None:
    assert ineligibility(REWARD, tier=tier, balance=balance, now=now, order_taken=taken) == expected


def test_inactive_rewards_are_never_available() -> None:
    off = Reward(uuid.uuid4(), "Off", 1, "percent_off", 10, active=False)
    assert ineligibility(off, tier=Tier.RESERVE, balance=9, now=NOW, order_taken=False) == (
        Ineligible.NOT_AVAILABLE
    )


def test_request_digest_tells_requests_apart() -> None:
    c, r = uuid.uuid4(), uuid.uuid4()
    assert request_digest(c, r, "o1") == request_digest(c, r, "o1")
    assert request_digest(c, r, "o1") != request_digest(c, r, "o2")
    assert request_digest(c, r, "o1") != request_digest(uuid.uuid4(), r, "o1")


@given(st.text(max_size=200))
def test_order_ids_are_checked_naming_the_field(order_id: str) -> None:
    try:
        assert check_order_id(order_id) == order_id
    except InvalidArgument as exc:
        assert exc.field == "order_id"
        assert not order_id or len(order_id) > 128 or not order_id.isprintable()
