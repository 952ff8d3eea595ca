"""checked_record_from_pb is check_record(record_from_pb(...)): same record, or same error.

The fast path looks up the parts of a record that repeat (role, preferences,
dietary, favorites) among those the domain accepted before; the domain's
validators stay the one definition of the rules, and this is the proof that
the shortcut keeps them. Records are drawn from small pools of good and bad
values, so parts repeat and the lookups are exercised with and without hits.
"""

from __future__ import annotations

from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer_api.convert import imports as convert
from customer_core.domain.imports import ImportRecord, check_record
from customer_core.errors import InvalidArgument
from customer_core.pb.customer.v1 import customer_pb2 as pb

T = TypeVar("T")


def mostly(good: list[T], bad: list[T]) -> st.SearchStrategy[T]:
    """A good value 29 times in 30: a record is often valid all through."""
    return st.integers(0, 29).flatmap(lambda k: st.sampled_from(bad if k == 0 else good))


IDS = mostly(["e1", "e2", "fam-1", "x" * 100, "~!"], ["", "a b", "x" * 101, "é"])
NAMES = mostly(["Ana", "  Ana  ", "x" * 80, "Zoë"], ["", "   ", "A\x1fB", "A\u0085", "x" * 81])
TEXT = st.one_of(*[NAMES] * 9, st.text(max_size=6))
USERNAMES = mostly(["ana", "Ana.B-1", "x" * 32], ["ab", "x" * 33, "an a", "ána", ""])
EMAILS = mostly(
    ["", "a@example.com", "A@B.CD"],
    ["a@b", "a @b.c", "a@b.c\x7f", "@b.c", "x" * 250 + "@b.co"],
)
ENUM = mostly([0, 1, 2, 3], [8, 99])
SMALL = mostly([0, 1, 2], [5, 99])


@st.composite
def preferences(draw: st.DrawFn) -> pb.Preferences:
    return pb.Preferences(
        milk=draw(ENUM),
        size=draw(SMALL),
        temperature=draw(SMALL),
        sweetness=draw(SMALL),
        caffeine=draw(SMALL),
        extra_shots=draw(mostly([0, 1, 6], [-1, 7])),
    )


@st.composite
def dietary(draw: st.DrawFn) -> pb.Dietary:
    return pb.Dietary(
        restrictions=draw(st.lists(mostly([1, 2, 3, 10], [0, 11, 77]), max_size=3)),
        allergies=draw(
            st.one_of(
                *[
                    st.lists(
                        mostly(["nuts", "Nuts", " nuts ", "x" * 64], ["", "x" * 65]), max_size=3
                    )
                ]
                * 9,
                st.just(["x"] * 21),
            )
        ),
    )


@st.composite
def favorite(draw: st.DrawFn) -> pb.ImportFavorite:
    return pb.ImportFavorite(
        drink_id=draw(mostly(["latte", " latte ", "mocha"], ["", "x" * 65])),
        drink_name=draw(mostly(["Latte", " Big  latte "], ["", "L\x01"])),
        customization=pb.Customization(
            size=draw(SMALL),
            milk=draw(ENUM),
            shots=draw(mostly([0, 6], [7])),
            syrups=draw(
                st.one_of(
                    *[st.lists(mostly(["vanilla", " Vanilla  "], ["", "x" * 33]), max_size=3)] * 9,
                    st.just(["v"] * 6),
                )
            ),
            temperature=draw(SMALL),
            notes=draw(mostly(["", " hot ", "a\tb"], ["a\x02", "x" * 201])),
        ),
        is_usual=draw(mostly([False, False, True], [True])),
    )


@st.composite
def records(draw: st.DrawFn) -> list[pb.ImportRecord]:
    """Records sharing a few roles, preferences, dietaries and favorites: a bad record
    often has parts a good one had before it, and so meets the remembered ones."""
    roles = draw(st.lists(mostly([0, 1, 2, 3], [42]), min_size=1, max_size=2))
    prefs = draw(st.lists(preferences(), min_size=1, max_size=2))
    diets = draw(st.lists(dietary(), min_size=1, max_size=2))
    favs = draw(st.lists(st.lists(favorite(), max_size=3), min_size=1, max_size=2))
    return [
        pb.ImportRecord(
            external_id=draw(IDS),
            family_external_id=draw(IDS),
            family_display_name=draw(st.one_of(TEXT, st.just(""))),
            username=draw(USERNAMES),
            display_name=draw(TEXT),
            email=draw(EMAILS),
            role=draw(st.sampled_from(roles)),
            preferences=draw(st.sampled_from(prefs)),
            dietary=draw(st.sampled_from(diets)),
            favorites=draw(st.sampled_from(favs)),
            opening_points=draw(mostly([0, 1, 10_000_000], [10_000_001, -1])),
        )
        for _ in range(draw(st.integers(1, 10)))
    ]


def by_the_domain(m: pb.ImportRecord, position: int) -> ImportRecord | tuple[str, str]:
    try:
        return check_record(convert.record_from_pb(m, position))
    except InvalidArgument as exc:
        return exc.field, exc.problem


def by_the_fast_path(m: pb.ImportRecord, position: int) -> ImportRecord | tuple[str, str]:
    try:
        return convert.checked_record_from_pb(m, position)
    except InvalidArgument as exc:
        return exc.field, exc.problem


ACCEPTED = [0, 0]  # refused, accepted: the test below checks both happen often


@pytest.fixture(autouse=True)
def fresh_caches() -> None:
    for cache in (
        convert._CHECKED_ROLES,
        convert._CHECKED_PREFERENCES,
        convert._CHECKED_DIETARIES,
        convert._CHECKED_FAVORITES,
    ):
        cache.clear()


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records())
def test_the_fast_path_accepts_and_refuses_what_the_domain_does(ms: list[pb.ImportRecord]) -> None:
    # Twice: first with the parts maybe unseen, then with every good part remembered.
    for _ in range(2):
        for i, m in enumerate(ms):
            expected = by_the_domain(m, i)
            assert by_the_fast_path(m, i) == expected
            ACCEPTED[isinstance(expected, ImportRecord)] += 1


def test_good_parts_are_remembered_and_bad_ones_never() -> None:
    good = pb.ImportRecord(
        external_id="e1",
        family_external_id="f1",
        username="ana",
        display_name="Ana",
        role=pb.FAMILY_ROLE_CHILD,
        preferences=pb.Preferences(milk=pb.MILK_TYPE_OAT),
        dietary=pb.Dietary(allergies=["Nuts", "nuts"]),
        favorites=[pb.ImportFavorite(drink_id="latte", drink_name="Latte")],
    )
    first = convert.checked_record_from_pb(good, 0)
    again = convert.checked_record_from_pb(good, 1)
    assert again.profile.dietary is first.profile.dietary
    assert again.favorites is first.favorites
    assert first.profile.dietary.allergies == ("Nuts",)
    bad = pb.ImportRecord()
    bad.CopyFrom(good)
    bad.dietary.allergies.append("")
    for _ in range(2):
        with pytest.raises(InvalidArgument) as got:
            convert.checked_record_from_pb(bad, 2)
        assert got.value.field == "record.dietary.allergies[2]"
    assert len(convert._CHECKED_DIETARIES) == 1


def test_the_property_saw_both_outcomes_often() -> None:
    # Runs after the property test in this module (pytest keeps file order).
    refused, accepted = ACCEPTED
    assert refused > 200 and accepted > 200, ACCEPTED
