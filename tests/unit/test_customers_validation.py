"""Profile rules: each refusal names its dotted field; good values come back normalised."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_core.domain.customers import (
    Customer,
    Dietary,
    Preferences,
    Profile,
    Role,
    apply_mask,
    check_email,
    check_mask,
    check_profile,
    check_username,
)
from customer_core.errors import InvalidArgument

GOOD = Profile(username="ana.r-1_x", display_name="Ana", role=Role.OWNER)


def refused_field(p: Profile) -> str:
    with pytest.raises(InvalidArgument) as caught:
        check_profile(p)
    return caught.value.field


@pytest.mark.parametrize("name", ["abc", "ABC", "a" * 32, "a.b", "x_y-z", "123"])
def test_usernames_accepted(name: str) -> None:
    assert check_username(name, "u") == name


@pytest.mark.parametrize("name", ["ab", "a" * 33, "a b", "ana!", "ñandu", "\u0130an", "", "a\nb"])
def test_usernames_refused(name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_username(name, "customer.username")
    assert caught.value.field == "customer.username"


@pytest.mark.parametrize("email", ["a@example.com", "first.last+tag@sub.example.co"])
def test_emails_accepted(email: str) -> None:
    assert check_email(email, "e") == email


@pytest.mark.parametrize(
    "email", ["plain", "a@b", "a@@b.com", "a b@c.com", "@b.com", "a@.com", "a@b.com\x00"]
)
def test_emails_refused(email: str) -> None:
    with pytest.raises(InvalidArgument):
        check_email(email, "customer.email")


def test_empty_email_means_none() -> None:
    assert check_email("", "e") is None


@pytest.mark.parametrize(
    ("profile", "field"),
    [
        (Profile(username="x", display_name="A"), "customer.username"),
        (Profile(username="ana", display_name=""), "customer.display_name"),
        (Profile(username="ana", display_name="\t "), "customer.display_name"),
        (Profile(username="ana", display_name="a\x07"), "customer.display_name"),
        (
            Profile(username="ana", display_name="A", preferences=Preferences(milk="goat")),
            "customer.preferences.milk",
        ),
        (
            Profile(username="ana", display_name="A", preferences=Preferences(extra_shots=7)),
            "customer.preferences.extra_shots",
        ),
        (
            Profile(
                username="ana", display_name="A", dietary=Dietary(restrictions=frozenset({"paleo"}))
            ),
            "customer.dietary.restrictions",
        ),
        (
            Profile(username="ana", display_name="A", dietary=Dietary(allergies=("ok", ""))),
            "customer.dietary.allergies[1]",
        ),
        (
            Profile(username="ana", display_name="A", dietary=Dietary(allergies=("x",) * 21)),
            "customer.dietary.allergies",
        ),
    ],
)
def test_bad_profiles_name_the_field(profile: Profile, field: str) -> None:
    assert refused_field(profile) == field


def test_allergies_fold_case_and_blanks() -> None:
    p = check_profile(
        Profile(
            username="ana",
            display_name="A",
            dietary=Dietary(allergies=("Peanuts", " peanuts", "soy")),
        )
    )
    assert p.dietary.allergies == ("Peanuts", "soy")


def test_role_is_required_only_when_asked() -> None:
    assert check_profile(Profile(username="ana", display_name="A")).role is None
    with pytest.raises(InvalidArgument) as caught:
        check_profile(Profile(username="ana", display_name="A"), require_role=True)
    assert caught.value.field == "customer.role"


# ---- Update masks ----------------------------------------------------------------------

CURRENT = Customer(
    id=uuid.uuid4(),
    family_id=uuid.uuid4(),
    username="ana",
    display_name="Ana",
    email="ana@example.com",
    role=Role.OWNER,
    preferences=Preferences(milk="oat", size="large", extra_shots=1),
    dietary=Dietary(frozenset({"vegan"}), ("peanuts",)),
)
PATCH = Profile(
    username="bo",
    display_name="Bo",
    role=Role.CHILD,
    preferences=Preferences(milk="soy"),
    dietary=Dietary(frozenset(), ("soy",)),
)


def test_nested_path_changes_only_that_field() -> None:
    p = apply_mask(CURRENT, PATCH, ["preferences.milk"])
    assert p.preferences == Preferences(milk="soy", size="large", extra_shots=1)
    assert p.display_name == "Ana"
    assert p.dietary == CURRENT.dietary


def test_top_level_path_replaces_the_whole_message() -> None:
    p = apply_mask(CURRENT, PATCH, ["preferences", "dietary.allergies"])
    assert p.preferences == Preferences(milk="soy")
    assert p.dietary == Dietary(frozenset({"vegan"}), ("soy",))


def test_empty_mask_replaces_every_updatable_field() -> None:
    p = apply_mask(CURRENT, PATCH, [])
    assert (p.username, p.display_name, p.email, p.role) == ("bo", "Bo", "", Role.CHILD)


@pytest.mark.parametrize("path", ["family", "name", "state", "preferences.", "x", "create_time"])
def test_unknown_paths_name_update_mask(path: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_mask([path])
    assert caught.value.field == "update_mask"


@given(st.lists(st.text(max_size=30), max_size=5))
def test_any_mask_is_applied_or_refused_naming_update_mask(paths: list[str]) -> None:
    try:
        p = apply_mask(CURRENT, PATCH, paths)
    except InvalidArgument as exc:
        assert exc.field == "update_mask"
    else:
        assert isinstance(p, Profile)
