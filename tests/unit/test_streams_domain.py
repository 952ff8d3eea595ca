"""Pure rules of the streaming RPCs: import validation and planning, ranking, coalescing,
cursors, and the bounded outbox."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_api.flow import Outbox
from customer_core.activity_streams import cursor_key
from customer_core.domain.customers import Dietary, Preferences, Profile, Role
from customer_core.domain.favorites import Customization, Draft
from customer_core.domain.imports import (
    MAX_REJECTIONS,
    Batch,
    Existing,
    ImportFavorite,
    ImportRecord,
    ImportSummary,
    Rejection,
    check_record,
    plan,
)
from customer_core.domain.streams import DrinkCount, rank_drinks, rank_hours, refresh_delay
from customer_core.errors import InvalidArgument, LimitExceeded


def rec(**changes: object) -> ImportRecord:
    base: dict[str, object] = {
        "position": 0,
        "external_id": "e-1",
        "family_external_id": "f-1",
        "family_display_name": "Fam",
        "profile": Profile(username="ana", display_name="Ana", role=Role.OWNER),
    }
    return ImportRecord(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"external_id": ""}, "external_id"),
        ({"external_id": "has space"}, "external_id"),
        ({"external_id": "x" * 101}, "external_id"),
        ({"family_external_id": ""}, "family_external_id"),
        ({"family_display_name": "\x00"}, "family_display_name"),
        ({"profile": Profile(username="a", display_name="A")}, "record.username"),
        ({"profile": Profile(username="ana", display_name="")}, "record.display_name"),
        ({"profile": Profile(username="ana", display_name="A", email="x")}, "record.email"),
        (
            {
                "profile": Profile(
                    username="ana", display_name="A", preferences=Preferences(extra_shots=9)
                )
            },
            "record.preferences.extra_shots",
        ),
        ({"opening_points": -1}, "opening_points"),
        ({"favorites": (ImportFavorite(Draft("", "Latte")),)}, "favorites[0].drink_id"),
        (
            {
                "favorites": (
                    ImportFavorite(Draft("a", "A"), True),
                    ImportFavorite(Draft("b", "B"), True),
                )
            },
            "favorites",
        ),
    ],
)
def test_a_bad_record_names_its_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as got:
        check_record(rec(**changes))
    assert got.value.field == field


def test_a_valid_record_is_normalised() -> None:
    latte = Draft("latte", "Latte", Customization(syrups=("Vanilla",)))
    r = check_record(
        rec(
            profile=Profile(
                username="ana", display_name="Ana", dietary=Dietary(allergies=("Nuts", "nuts"))
            ),
            favorites=(ImportFavorite(latte), ImportFavorite(latte, True)),
        )
    )
    assert r.profile.role is Role.ADULT  # unspecified role: adult
    assert r.profile.dietary.allergies == ("Nuts",)
    assert [(f.draft.drink_id, f.is_usual) for f in r.favorites] == [("latte", True)]


def test_planning_an_existing_record() -> None:
    r = check_record(rec(opening_points=50, favorites=(ImportFavorite(Draft("mocha", "Mocha")),)))
    fid, cid = uuid.uuid4(), uuid.uuid4()
    same = Existing(cid, fid, r.profile, frozenset({r.favorites[0].key}), 1, False, True)
    assert plan(r, fid, same, uuid.uuid4()).outcome == "unchanged"
    fresh = Existing(cid, fid, r.profile, frozenset(), 3, True, False)
    p = plan(r, fid, fresh, uuid.uuid4())
    assert (p.outcome, p.write_profile, p.opening_points) == ("updated", False, 50)
    assert [(pos, usual) for _, pos, usual in p.favorites] == [(3, False)]
    with pytest.raises(InvalidArgument) as got:
        plan(r, uuid.uuid4(), same, uuid.uuid4())
    assert got.value.field == "family_external_id"
    new = plan(r, fid, None, cid)
    assert (new.outcome, new.customer_id) == ("created", cid)


def test_a_batch_holds_one_record_per_external_id_and_username() -> None:
    b = Batch()
    b.add(rec())
    assert not b.fits(rec(position=1))
    assert not b.fits(rec(external_id="e-2", profile=Profile(username="ANA", display_name="A")))
    assert b.fits(rec(external_id="e-2", profile=Profile(username="bo", display_name="B")))


@given(st.integers(min_value=0, max_value=5000))
def test_the_summary_lists_at_most_the_cap_and_counts_all(n: int) -> None:
    s = ImportSummary()
    for i in range(n):
        s.reject(Rejection(i, f"e{i}", "username", "bad"))
    assert s.rejected == n
    assert [r.position for r in s.rejections] == list(range(min(n, MAX_REJECTIONS)))


@given(st.lists(st.tuples(st.text(max_size=3), st.integers(0, 50)), max_size=30))
def test_top_drinks_are_at_most_five_most_ordered_first(drinks: list[tuple[str, int]]) -> None:
    ranked = rank_drinks([DrinkCount(d, d, c) for d, c in drinks])
    assert len(ranked) == min(5, len(drinks))
    assert [d.count for d in ranked] == sorted((d.count for d in ranked), reverse=True)
    if len(drinks) > 5:
        assert ranked[-1].count >= sorted((c for _, c in drinks), reverse=True)[4]


def test_peak_hours_map_hour_of_week_to_iso_day_and_hour() -> None:
    ranked = rank_hours([(0, 1), (167, 9), (25, 9), (50, 0)])
    assert [(h.day_of_week, h.hour, h.count) for h in ranked] == [(2, 1, 9), (7, 23, 9), (1, 0, 1)]


@given(st.floats(0, 100), st.floats(0, 10), st.floats(0.01, 5))
def test_a_refresh_comes_at_once_or_one_interval_after_the_last(
    last: float, elapsed: float, interval: float
) -> None:
    now = last + elapsed
    delay = refresh_delay(last, now, interval)
    assert 0 <= delay <= interval + 1e-9
    assert delay == pytest.approx(max(0.0, interval - elapsed), abs=1e-9)
    assert refresh_delay(None, now, interval) == 0


@given(st.integers(0, 2**48), st.integers(0, 2**20), st.integers(0, 2**48), st.integers(0, 2**20))
def test_cursors_compare_as_stream_ids(a: int, b: int, c: int, d: int) -> None:
    assert (cursor_key(f"{a}-{b}") < cursor_key(f"{c}-{d}")) == ((a, b) < (c, d))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "12",
        "a-1",
        "1-",
        "-1",
        "1-2-3",
        "1.5-0",
        " 1-0",
        "1_0-0",
        "+1-0",
        # Valkey stream ids are two unsigned 64-bit numbers in ASCII digits.
        "18446744073709551616-0",
        "0-18446744073709551616",
        "99999999999999999999-0",
        "\u0661\u0662-\u0660",
        "\uff11-0",
        "\u00b2-0",
    ],
)
def test_a_malformed_cursor_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a cursor"):
        cursor_key(bad)


def test_the_largest_stream_id_is_a_cursor() -> None:
    top = 2**64 - 1
    assert cursor_key(f"{top}-{top}") == (top, top)


async def test_an_outbox_closes_when_its_reader_falls_too_far_behind() -> None:
    box: Outbox[int] = Outbox(3, "too slow; resume from your cursor")
    for i in range(3):
        box.put(i)
    assert await box.get() == 0
    box.put(3)
    box.put(4)  # four waiting with a limit of three: closed, queue dropped
    assert len(box) == 0
    with pytest.raises(LimitExceeded, match="resume from your cursor"):
        await box.get()


async def test_put_wait_waits_for_room_instead_of_closing() -> None:
    box: Outbox[int] = Outbox(1, "slow")
    box.put(1)
    waiting = asyncio.create_task(box.put_wait(2))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    assert await box.get() == 1
    await waiting
    assert await box.get() == 2 and box.error is None
