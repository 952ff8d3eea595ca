"""Campaign rules: windows in local time across DST, eligibility, points, phases."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_core.domain.campaigns import (
    Campaign,
    CampaignState,
    OrderFacts,
    Phase,
    campaign_awards,
    categories_of,
    grant_within,
    is_active,
    phase_of,
    points_for,
)

NY = ZoneInfo("America/New_York")
CUSTOMER = uuid.UUID("00000000-0000-4000-8000-000000000001")


def campaign(**changes: object) -> Campaign:
    base = Campaign(
        id=uuid.UUID("00000000-0000-4000-8000-0000000000c1"),
        key="coffee/test",
        display_name="Test",
        starts_at=datetime(2026, 1, 1, tzinfo=UTC),
        ends_at=datetime(2028, 1, 1, tzinfo=UTC),
        multiplier=Decimal(2),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def order(at: datetime, **changes: object) -> OrderFacts:
    base = OrderFacts(
        customer_id=CUSTOMER,
        family_id=None,
        order_id="o-1",
        occurred_at=at,
        total_minor=1000,
        currency_code="USD",
        drink_ids=("caffe-latte",),
        tier="green",
        is_first_order=False,
        is_family_member=False,
        base_points=100,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


MORNINGS = campaign(
    time_zone="America/New_York",
    hours=(time(7), time(10)),
    weekdays=frozenset({0, 1, 2, 3, 4}),
)


@pytest.mark.parametrize(
    ("local", "active"),
    [
        # Winter (EST, UTC-5) and summer (EDT, UTC-4): 07:00-10:00 local both times.
        (datetime(2026, 1, 6, 7, 0, tzinfo=NY), True),
        (datetime(2026, 1, 6, 9, 59, tzinfo=NY), True),
        (datetime(2026, 1, 6, 10, 0, tzinfo=NY), False),
        (datetime(2026, 1, 6, 6, 59, tzinfo=NY), False),
        (datetime(2026, 7, 7, 7, 30, tzinfo=NY), True),
        (datetime(2026, 7, 7, 10, 30, tzinfo=NY), False),
        # The Monday right after spring-forward (8 March 2026) and after fall-back (1 Nov).
        (datetime(2026, 3, 9, 7, 0, tzinfo=NY), True),
        (datetime(2026, 11, 2, 9, 30, tzinfo=NY), True),
        # Weekend mornings are out.
        (datetime(2026, 1, 10, 8, 0, tzinfo=NY), False),
    ],
)
def test_recurring_hours_follow_local_time_across_dst(local: datetime, active: bool) -> None:
    # The order's time arrives in UTC; the rule is in New York wall-clock time.
    assert is_active(MORNINGS, local.astimezone(UTC)) is active


def test_the_same_utc_hour_is_in_or_out_depending_on_dst() -> None:
    # 11:30 UTC is 06:30 in January (out) but 07:30 in July (in).
    assert not is_active(MORNINGS, datetime(2026, 1, 6, 11, 30, tzinfo=UTC))
    assert is_active(MORNINGS, datetime(2026, 7, 7, 11, 30, tzinfo=UTC))


def test_weekday_is_the_local_one_not_utc() -> None:
    tokyo = campaign(time_zone="Asia/Tokyo", weekdays=frozenset({0}))  # Mondays in Tokyo
    sunday_utc = datetime(2026, 1, 4, 16, 0, tzinfo=UTC)  # Monday 01:00 in Tokyo
    assert is_active(tokyo, sunday_utc)
    assert not is_active(tokyo, sunday_utc - timedelta(hours=2))  # Sunday 23:00 in Tokyo


def test_overnight_hours_belong_to_the_day_they_started() -> None:
    fridays = campaign(time_zone="Europe/Paris", hours=(time(22), time(2)), weekdays=frozenset({4}))
    paris = ZoneInfo("Europe/Paris")
    assert is_active(fridays, datetime(2026, 1, 9, 23, 0, tzinfo=paris))  # Friday night
    assert is_active(fridays, datetime(2026, 1, 10, 1, 30, tzinfo=paris))  # Saturday early
    assert not is_active(fridays, datetime(2026, 1, 10, 23, 0, tzinfo=paris))  # Saturday night
    assert not is_active(fridays, datetime(2026, 1, 9, 1, 30, tzinfo=paris))  # Friday early
    assert not is_active(fridays, datetime(2026, 1, 9, 12, 0, tzinfo=paris))


def test_window_is_start_inclusive_end_exclusive_and_pause_stops_it() -> None:
    c = campaign()
    assert is_active(c, c.starts_at)
    assert not is_active(c, c.ends_at)
    assert not is_active(c, c.starts_at - timedelta(microseconds=1))
    assert not is_active(replace(c, paused=True), c.starts_at)


def test_multiplier_gives_extra_points_rounded_down_plus_bonus() -> None:
    assert points_for(campaign(multiplier=Decimal("1.5")), 33) == 16  # 16.5 -> 16
    assert points_for(campaign(multiplier=Decimal(2), bonus_points=50), 100) == 150
    assert points_for(campaign(multiplier=Decimal(1), bonus_points=50), 0) == 50
    assert points_for(campaign(multiplier=Decimal(3)), -10) == 0


@given(
    base=st.integers(min_value=-1000, max_value=10**9),
    hundredths=st.integers(min_value=100, max_value=1000),
    bonus=st.integers(min_value=0, max_value=100_000),
)
def test_points_are_never_negative_and_never_more_than_exact(
    base: int, hundredths: int, bonus: int
) -> None:
    m = Decimal(hundredths) / 100
    points = points_for(campaign(multiplier=m, bonus_points=bonus), base)
    exact = Decimal(max(base, 0)) * (m - 1) + bonus
    assert 0 <= points <= exact < points + 1


@given(
    want=st.integers(min_value=0, max_value=10**6),
    total=st.none() | st.integers(min_value=-100, max_value=10**6),
    customer=st.none() | st.integers(min_value=-100, max_value=10**6),
)
def test_grant_never_exceeds_any_budget_left(
    want: int, total: int | None, customer: int | None
) -> None:
    granted = grant_within(want, total, customer)
    assert 0 <= granted <= want
    for left in (total, customer):
        if left is not None:
            assert granted <= max(left, 0)
    if total is None and customer is None:
        assert granted == want


def test_eligibility_conditions_all_hold() -> None:
    at = datetime(2026, 5, 5, 12, tzinfo=UTC)
    gold = campaign(tiers=frozenset({"gold", "reserve"}))
    assert campaign_awards([gold], order(at)) == []
    assert [a.points for a in campaign_awards([gold], order(at, tier="gold"))] == [100]

    first = campaign(first_order_only=True)
    assert campaign_awards([first], order(at)) == []
    assert campaign_awards([first], order(at, is_first_order=True))

    family = campaign(family_members_only=True)
    assert campaign_awards([family], order(at)) == []
    assert campaign_awards([family], order(at, is_family_member=True))

    big = campaign(min_order_total_minor=2000, min_order_currency="USD")
    assert campaign_awards([big], order(at)) == []
    assert campaign_awards([big], order(at, total_minor=2500))
    assert campaign_awards([big], order(at, total_minor=2500, currency_code="EUR")) == []


def test_drinks_match_by_id_or_category() -> None:
    at = datetime(2026, 5, 5, 12, tzinfo=UTC)
    oat = campaign(drink_categories=frozenset({"oat-milk"}), bonus_points=50)
    assert campaign_awards([oat], order(at)) == []
    assert campaign_awards([oat], order(at, drink_ids=("brewed-coffee", "iced-oat-latte")))
    # A category the caller knows of (a catalogue) counts as well.
    assert campaign_awards([oat], order(at, drink_categories=frozenset({"oat-milk"})))
    by_id = campaign(drink_ids=frozenset({"cold-brew"}), drink_categories=frozenset({"tea"}))
    assert campaign_awards([by_id], order(at, drink_ids=("cold-brew",)))
    assert campaign_awards([by_id], order(at, drink_ids=("chai-tea-latte",)))
    assert campaign_awards([by_id], order(at, drink_ids=("flat-white",))) == []


def test_drink_categories_from_ids() -> None:
    assert categories_of("iced-oat-latte") == {"cold", "oat-milk", "plant-milk", "espresso"}
    assert categories_of("matcha-latte") == {"tea"}  # a matcha latte is no espresso drink
    assert categories_of("reserve_pour_over") == {"reserve", "brewed"}
    assert categories_of("hot-chocolate") == frozenset()


def test_every_active_campaign_awards_in_a_stable_order() -> None:
    at = datetime(2026, 5, 5, 12, tzinfo=UTC)
    a = campaign(id=uuid.UUID(int=2), key="coffee/a", multiplier=Decimal("1.5"))
    b = campaign(id=uuid.UUID(int=1), key="coffee/b", multiplier=Decimal(1), bonus_points=7)
    ended = campaign(id=uuid.UUID(int=3), ends_at=at)
    awards = campaign_awards([a, ended, b], order(at))
    assert [(x.campaign_key, x.points) for x in awards] == [("coffee/b", 7), ("coffee/a", 50)]
    assert all(x.order_id == "o-1" and x.customer_id == CUSTOMER for x in awards)


def test_an_order_is_judged_at_its_own_time_not_now() -> None:
    december = campaign(
        starts_at=datetime(2026, 12, 1, tzinfo=UTC), ends_at=datetime(2027, 1, 1, tzinfo=UTC)
    )
    late_event = order(datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert campaign_awards([december], late_event)


def _state(**changes: object) -> CampaignState:
    base = CampaignState(
        starts_at=datetime(2026, 1, 1, tzinfo=UTC),
        ends_at=datetime(2027, 1, 1, tzinfo=UTC),
        paused=False,
        budget_total=1000,
        points_awarded=0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "now", "phase"),
    [
        (_state(), datetime(2025, 6, 1, tzinfo=UTC), Phase.SCHEDULED),
        (_state(), datetime(2026, 6, 1, tzinfo=UTC), Phase.ACTIVE),
        (_state(paused=True), datetime(2026, 6, 1, tzinfo=UTC), Phase.PAUSED),
        (_state(points_awarded=1000), datetime(2026, 6, 1, tzinfo=UTC), Phase.EXHAUSTED),
        (_state(), datetime(2027, 1, 1, tzinfo=UTC), Phase.ENDED),
        (_state(ended_at=datetime(2026, 2, 1, tzinfo=UTC)), datetime(2026, 6, 1), Phase.ENDED),
        (_state(paused=True, points_awarded=5000), datetime(2027, 2, 1, tzinfo=UTC), Phase.ENDED),
    ],
)
def test_phase_follows_the_clock_the_budget_and_the_spec(
    state: CampaignState, now: datetime, phase: Phase
) -> None:
    assert phase_of(state, now.replace(tzinfo=UTC)) is phase
