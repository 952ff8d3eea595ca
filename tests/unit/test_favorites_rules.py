"""Pure favorite rules: the canonical customisation key and validation."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_core.domain.favorites import (
    Customization,
    Draft,
    Favorite,
    apply_mask,
    check_customization,
    check_draft,
    check_mask,
    customization_key,
)
from customer_core.errors import InvalidArgument

syrup = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=10)


@given(st.lists(syrup, max_size=5), st.randoms())
def test_syrup_order_case_and_spacing_do_not_make_a_new_favorite(
    syrups: list[str], rnd: object
) -> None:
    shuffled = list(syrups)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    shouted = [f"  {s.upper()} " for s in shuffled]
    a = Customization(size="large", syrups=tuple(syrups), notes="extra  hot")
    b = Customization(size="large", syrups=tuple(shouted), notes=" Extra hot")
    assert customization_key(a) == customization_key(b)


def test_different_customisations_have_different_keys() -> None:
    base = Customization(size="large", milk="oat", shots=2, syrups=("vanilla",))
    variants = [
        Customization(size="small", milk="oat", shots=2, syrups=("vanilla",)),
        Customization(size="large", milk="soy", shots=2, syrups=("vanilla",)),
        Customization(size="large", milk="oat", shots=3, syrups=("vanilla",)),
        Customization(size="large", milk="oat", shots=2, syrups=("vanilla", "vanilla")),
        Customization(size="large", milk="oat", shots=2, syrups=("vanilla",), temperature="iced"),
        Customization(size="large", milk="oat", shots=2, syrups=("vanilla",), notes="dry"),
    ]
    keys = {customization_key(v) for v in variants}
    assert len(keys) == len(variants) and customization_key(base) not in keys


@pytest.mark.parametrize(
    ("draft", "field"),
    [
        (Draft("", "Latte"), "favorite.drink_id"),
        (Draft("x" * 65, "Latte"), "favorite.drink_id"),
        (Draft("latte", "   "), "favorite.drink_name"),
        (Draft("latte", "L" * 81), "favorite.drink_name"),
        (Draft("latte", "Latte", Customization(shots=-1)), "favorite.customization.shots"),
        (Draft("latte", "Latte", Customization(size="huge")), "favorite.customization.size"),
        (
            Draft("latte", "Latte", Customization(syrups=("a",) * 6)),
            "favorite.customization.syrups",
        ),
        (
            Draft("latte", "Latte", Customization(syrups=("ok", " "))),
            "favorite.customization.syrups[1]",
        ),
        (Draft("latte", "Latte", Customization(notes="n" * 201)), "favorite.customization.notes"),
        (Draft("latte", "Latte", Customization(notes="no\x00nul")), "favorite.customization.notes"),
    ],
)
def test_bad_drafts_name_the_field(draft: Draft, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_draft(draft)
    assert caught.value.field == field


@given(st.integers(-100, 100))
def test_shots_are_zero_to_six(shots: int) -> None:
    if 0 <= shots <= 6:
        assert check_customization(Customization(shots=shots)).shots == shots
    else:
        with pytest.raises(InvalidArgument):
            check_customization(Customization(shots=shots))


def test_drafts_are_tidied() -> None:
    d = check_draft(Draft(" latte ", " Oat   latte ", Customization(syrups=(" vanilla  bean ",))))
    assert (d.drink_id, d.drink_name, d.customization.syrups) == (
        "latte",
        "Oat latte",
        ("vanilla bean",),
    )


def test_masks() -> None:
    assert check_mask([]) == ("drink_id", "drink_name", "customization", "position")
    assert check_mask(["drink_name", "drink_name"]) == ("drink_name",)
    with pytest.raises(InvalidArgument) as caught:
        check_mask(["is_usual"])
    assert caught.value.field == "update_mask.paths"
    current = Favorite(uuid.uuid4(), uuid.uuid4(), "latte", "Latte", Customization(shots=1), 0)
    patched = apply_mask(current, Draft("mocha", "Mocha", Customization()), ["drink_name"])
    assert patched == Draft("latte", "Mocha", Customization(shots=1))
