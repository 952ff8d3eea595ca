"""Cron schedules and job policies (pure rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_core.domain.jobs import (
    DEFAULT_SCHEDULES,
    JOB_NAMES,
    CronError,
    JobPolicy,
    parse_cron,
    tick_of,
)

AT = datetime(2025, 6, 11, 12, 0, 30, tzinfo=UTC)  # Wednesday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("* * * * *", datetime(2025, 6, 11, 12, 1, tzinfo=UTC)),
        ("*/5 * * * *", datetime(2025, 6, 11, 12, 5, tzinfo=UTC)),
        ("30 2 * * *", datetime(2025, 6, 12, 2, 30, tzinfo=UTC)),
        ("0 9 * * 1", datetime(2025, 6, 16, 9, 0, tzinfo=UTC)),  # next Monday
        ("0 9 * * 7", datetime(2025, 6, 15, 9, 0, tzinfo=UTC)),  # 7 is Sunday too
        ("0 0 1 1 *", datetime(2026, 1, 1, tzinfo=UTC)),
        ("15,45 8-10 * * *", datetime(2025, 6, 12, 8, 15, tzinfo=UTC)),
        # Both day fields restricted: either matches (the 13th, or Monday 16th).
        ("0 0 13 * 1", datetime(2025, 6, 13, tzinfo=UTC)),
        ("0 0 29 2 *", datetime(2028, 2, 29, tzinfo=UTC)),
    ],
)
def test_next_run(expression: str, expected: datetime) -> None:
    assert parse_cron(expression).next_after(AT) == expected


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("* * * *", "expected 5 fields"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("* 24 * * *", "hour: 24 is outside 0-23"),
        ("* * 0 * *", "day: 0 is outside 1-31"),
        ("* * * 13 *", "month: 13 is outside 1-12"),
        ("* * * * 8", "weekday: 8 is outside 0-7"),
        ("*/0 * * * *", "minute: 0 is outside 1-60"),
        ("5-1 * * * *", "minute: range '5-1' runs backwards"),
        ("x * * * *", "minute: 'x' is not a number"),
        ("0 0 31 2 *", "never fires"),
    ],
)
def test_bad_cron_names_the_field(expression: str, problem: str) -> None:
    with pytest.raises(CronError, match=problem.replace("*", r"\*")):
        parse_cron(expression)


def test_defaults_cover_every_job_and_parse() -> None:
    assert set(DEFAULT_SCHEDULES) == set(JOB_NAMES)
    for expression in DEFAULT_SCHEDULES.values():
        parse_cron(expression)


@given(
    minute=st.integers(0, 59),
    hour=st.integers(0, 23),
    at=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
)
def test_next_run_is_the_first_matching_minute_after(minute: int, hour: int, at: datetime) -> None:
    cron = parse_cron(f"{minute} {hour} * * *")
    nxt = cron.next_after(at)
    assert nxt > at and cron.matches(nxt)
    assert nxt - at <= timedelta(days=1)
    assert (nxt.hour, nxt.minute, nxt.second) == (hour, minute, 0)


@given(text=st.text(alphabet="0123456789*/-, x", max_size=30))
def test_any_text_parses_or_raises_cron_error(text: str) -> None:
    try:
        cron = parse_cron(text)
    except CronError:
        return
    assert cron.matches(cron.next_after(AT))


def test_tick_is_the_utc_minute() -> None:
    assert tick_of(AT) == "2025-06-11T12:00Z"
    assert tick_of(AT + timedelta(seconds=29)) == tick_of(AT)


def test_policy_cutoffs() -> None:
    policy = JobPolicy(expiry_days=180, expiry_warning_days=14, rollup_overlap_seconds=60)
    assert policy.expiry_cutoff(AT) == AT - timedelta(days=180)
    assert policy.warning_cutoff(AT) == AT - timedelta(days=166)
    assert policy.rollup_from(AT) == AT - timedelta(seconds=60)
    assert policy.rollup_from(None).year == 1970
