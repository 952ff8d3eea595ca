"""The import's fast paths keep the rules: control characters, cached enum conversion, ids."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_api.convert import imports as convert
from customer_core.domain import imports as domain
from customer_core.domain.customers import Dietary, Profile, check_profile, check_text
from customer_core.domain.favorites import Customization, Draft, check_draft
from customer_core.domain.imports import ImportFavorite, ImportRecord, check_record
from customer_core.errors import InvalidArgument
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.usecases.import_writes import new_ids


def test_control_characters_are_exactly_unicode_categories_cc_and_cs() -> None:
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        control = unicodedata.category(ch) in ("Cc", "Cs")
        try:
            check_text(f"a{ch}b", "f", 1, 10)
        except InvalidArgument as exc:
            assert control, f"U+{code:04X} refused"
            assert exc.problem == "must not contain control characters"
        else:
            assert not control, f"U+{code:04X} accepted"


@given(st.text(max_size=20))
def test_a_checked_profile_checks_to_itself(name: str) -> None:
    p = Profile(username="ana", display_name=name or "x", email="", dietary=Dietary())
    try:
        once = check_profile(p)
    except InvalidArgument:
        return
    assert check_profile(once) == once


def record(milk: int = 0, role: int = 0, restrictions: tuple[int, ...] = ()) -> pb.ImportRecord:
    return pb.ImportRecord(
        external_id="e",
        role=role,
        preferences=pb.Preferences(milk=milk),
        dietary=pb.Dietary(restrictions=list(restrictions)),
    )


def test_an_unknown_enum_is_refused_however_often_known_ones_were_seen() -> None:
    for _ in range(3):
        convert.record_from_pb(record(pb.MILK_TYPE_OAT, pb.FAMILY_ROLE_CHILD), 0)
    for bad, field in [
        (record(milk=99), "preferences.milk"),
        (record(role=42), "role"),
        (record(restrictions=(77,)), "dietary.restrictions"),
        (record(restrictions=(0,)), "dietary.restrictions"),
    ]:
        for _ in range(2):  # a refused value is never remembered
            with pytest.raises(InvalidArgument) as got:
                convert.record_from_pb(bad, 0)
            assert got.value.field == field


def test_values_beyond_the_cache_limit_still_convert(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(convert, "CACHE_LIMIT", 2)
    monkeypatch.setattr(convert, "_PREFERENCES", {})
    shots = [
        convert.record_from_pb(
            pb.ImportRecord(preferences=pb.Preferences(extra_shots=i)), 0
        ).profile.preferences.extra_shots
        for i in range(5)
    ]
    assert shots == [0, 1, 2, 3, 4]
    assert len(convert._PREFERENCES) == 2


def test_new_ids_are_distinct_random_uuids() -> None:
    ids = new_ids(5000)
    assert len(set(ids)) == 5000
    assert all(u.version == 4 and u.variant == "specified in RFC 4122" for u in ids)
    assert new_ids(0) == []


def favorite_record(drink_id: str, syrups: tuple[str, ...] = ()) -> ImportRecord:
    draft = Draft(drink_id, "Latte", Customization(syrups=syrups))
    return ImportRecord(
        0, "e", "f", "F", Profile(username="ana", display_name="Ana"), (ImportFavorite(draft),)
    )


def test_a_checked_favorite_is_reused_and_a_bad_one_is_named_every_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(domain, "_CHECKED_DRAFTS", {})
    good = favorite_record("latte", ("  vanilla   syrup ",))
    first = check_record(good).favorites[0].draft
    again = check_record(favorite_record("latte", ("  vanilla   syrup ",))).favorites[0].draft
    assert first is again  # the second record's draft came from the cache
    assert first == check_draft(good.favorites[0].draft, "favorites[0]")
    assert first.customization.syrups == ("vanilla syrup",)
    bad = ImportRecord(
        **{
            **good.__dict__,
            "favorites": (good.favorites[0], ImportFavorite(Draft("", "Latte", Customization()))),
        }
    )
    for _ in range(2):
        with pytest.raises(InvalidArgument) as got:
            check_record(bad)
        assert got.value.field == "favorites[1].drink_id"
    assert len(domain._CHECKED_DRAFTS) == 1


def test_drafts_beyond_the_cache_limit_are_still_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(domain, "_CHECKED_DRAFTS", {})
    monkeypatch.setattr(domain, "DRAFT_CACHE_LIMIT", 2)
    drinks = [
        check_record(favorite_record(f" d{i} ")).favorites[0].draft.drink_id for i in range(5)
    ]
    assert drinks == [f"d{i}" for i in range(5)]
    assert len(domain._CHECKED_DRAFTS) == 2
