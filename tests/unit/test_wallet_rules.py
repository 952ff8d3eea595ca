"""The family wallet's pure rules: the unpooling split, transfers, roles, weeks, caps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_core.domain.customers import Role
from customer_core.domain.wallet import (
    Member,
    can_decide,
    check_weekly_points,
    needs_approval,
    over_cap,
    pool_entries,
    remainder_taker,
    split_pool,
    take_back,
    unpool_entries,
    week_start,
)
from customer_core.errors import InvalidArgument

MEMBERS = [uuid.UUID(int=i) for i in range(1, 6)]
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_the_proto_example_splits_75_25_and_one_to_the_owner() -> None:
    owner, adult, child = MEMBERS[:3]
    shares = split_pool(101, {owner: -99, adult: 150, child: 50}, owner)
    assert shares == {adult: 75, child: 25, owner: 1}


def test_nobody_contributed_so_the_taker_gets_everything() -> None:
    assert split_pool(40, {MEMBERS[1]: -5, MEMBERS[2]: 0}, MEMBERS[0]) == {MEMBERS[0]: 40}
    assert split_pool(0, {MEMBERS[1]: 10}, MEMBERS[0]) == {}


@given(
    balance=st.integers(0, 10**9),
    contributions=st.lists(st.integers(-(10**6), 10**6), min_size=1, max_size=5),
)
def test_shares_add_up_never_go_negative_and_follow_the_weights(
    balance: int, contributions: list[int]
) -> None:
    given_to = dict(zip(MEMBERS, contributions, strict=False))
    taker = MEMBERS[0]
    shares = split_pool(balance, given_to, taker)
    assert sum(shares.values()) == balance
    assert all(v > 0 for v in shares.values())
    total = sum(max(c, 0) for c in given_to.values())
    for member, weight in given_to.items():
        exact = balance * max(weight, 0) / total if total else 0
        got = shares.get(member, 0)
        if member != taker:
            # Rounded down: never more than the exact share, less by under one point.
            assert exact - 1 < got <= exact + 1e-6
    assert shares.get(taker, 0) >= 0


def test_a_negative_balance_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="never negative"):
        split_pool(-1, {}, MEMBERS[0])


def test_transfers_come_in_pairs_that_move_nothing_overall() -> None:
    wallet, own = uuid.uuid4(), {m: uuid.uuid4() for m in MEMBERS[:3]}
    moving = [(m, own[m], p) for m, p in zip(MEMBERS[:3], (120, 0, 40), strict=True)]
    entries = pool_entries(7, wallet, "families/x", moving)
    assert len(entries) == 4 and sum(e.points for e in entries) == 0
    assert sum(e.points for e in entries if e.account_id == wallet) == 160
    for e in entries:
        e.check()
        assert e.kind == "transfer" and e.source == "family" and e.member_id in own
    assert len({e.idempotency_key for e in entries}) == 4
    back = unpool_entries(8, wallet, "families/x", {MEMBERS[0]: 100, MEMBERS[2]: 60}, own)
    assert sum(e.points for e in back) == 0
    assert {e.account_id: e.points for e in back if e.points > 0} == {
        own[MEMBERS[0]]: 100,
        own[MEMBERS[2]]: 60,
    }


def test_the_remainder_goes_to_the_longest_standing_owner_then_adult() -> None:
    a, b, c = (
        Member(MEMBERS[i], r, T0 + timedelta(days=i))
        for i, r in enumerate((Role.CHILD, Role.ADULT, Role.ADULT))
    )
    assert remainder_taker([a, b, c]) == b
    owner = Member(MEMBERS[4], Role.OWNER, T0 + timedelta(days=9))
    assert remainder_taker([a, b, c, owner]) == owner
    assert remainder_taker([a]) == a
    assert remainder_taker([]) is None


def test_only_owners_and_adults_decide_and_only_pooled_children_wait() -> None:
    assert can_decide(Role.OWNER) and can_decide(Role.ADULT) and not can_decide(Role.CHILD)
    assert needs_approval(Role.CHILD, pooled=True)
    assert not needs_approval(Role.CHILD, pooled=False)
    assert not needs_approval(Role.ADULT, pooled=True)


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
)
def test_a_week_starts_on_the_monday_before(now: datetime) -> None:
    start = week_start(now)
    assert start.weekday() == 0 and (start.hour, start.minute, start.second) == (0, 0, 0)
    assert start <= now < start + timedelta(days=7)


def test_caps() -> None:
    assert not over_cap(None, 10**9, 100)
    assert not over_cap(150, 50, 100) and over_cap(150, 51, 100)
    assert check_weekly_points(0) == 0 and check_weekly_points(10_000_000) == 10_000_000
    for bad in (-1, 10_000_001):
        with pytest.raises(InvalidArgument) as caught:
            check_weekly_points(bad)
        assert caught.value.field == "weekly_points"


@given(
    points=st.integers(0, 10_000),
    balances=st.lists(st.integers(0, 5_000), min_size=0, max_size=5),
)
def test_take_back_takes_in_order_all_it_can_and_never_overdraws(
    points: int, balances: list[int]
) -> None:
    accounts = list(zip(MEMBERS, balances, strict=False))
    takes = take_back(points, accounts)
    have = dict(accounts)
    assert sum(t for _, t in takes) == min(points, sum(have.values()))
    assert all(0 < t <= have[a] for a, t in takes)
    # Each account is emptied before the next one is touched.
    order = [a for a, _ in accounts]
    for a, t in takes[:-1]:
        assert t == have[a]
    assert [a for a, _ in takes] == [a for a in order if a in dict(takes)]
