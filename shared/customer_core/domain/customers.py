"""Families and their members as domain values.

Enumerations are lower-case words ("oat", "large"); the api maps them to and
from the proto enums. `None` means "not set / no preference".
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from customer_core.errors import InvalidArgument


class Role(StrEnum):
    OWNER = "owner"
    ADULT = "adult"
    CHILD = "child"


MILKS = ("whole", "skim", "oat", "almond", "soy", "coconut", "none")
SIZES = ("small", "medium", "large", "extra_large")
TEMPERATURES = ("hot", "warm", "iced", "blended")
SWEETNESS = ("none", "light", "regular", "extra")
CAFFEINE = ("decaf", "half", "regular", "extra")
RESTRICTIONS = (
    "vegetarian",
    "vegan",
    "dairy_free",
    "lactose_free",
    "gluten_free",
    "nut_free",
    "soy_free",
    "sugar_free",
    "halal",
    "kosher",
)


@dataclass(frozen=True)
class Preferences:
    milk: str | None = None
    size: str | None = None
    temperature: str | None = None
    sweetness: str | None = None
    caffeine: str | None = None
    extra_shots: int = 0


@dataclass(frozen=True)
class Dietary:
    restrictions: frozenset[str] = frozenset()
    allergies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Family:
    id: uuid.UUID
    display_name: str
    wallet_pooled: bool = False
    member_count: int = 0
    external_id: str | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None


@dataclass(frozen=True)
class Customer:
    id: uuid.UUID
    family_id: uuid.UUID
    username: str | None
    display_name: str | None
    email: str | None = None
    role: Role = Role.ADULT
    preferences: Preferences = field(default_factory=Preferences)
    dietary: Dietary = field(default_factory=Dietary)
    deleted: bool = False
    external_id: str | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None


# ---- Validation -----------------------------------------------------------------
# Every check names the dotted field it refuses (`customer.preferences.milk`), so
# a client can point at the exact input; `prefix` is where the value sits in the
# request.

USERNAME_RE = re.compile(r"[a-z0-9_.-]{3,32}", re.IGNORECASE | re.ASCII)
# Deliberately loose: one @, a dot in the domain, no spaces. Deliverability is
# the mail system's business; this only refuses what cannot be an address.
EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
EMAIL_MAX = 254
DISPLAY_NAME_MAX = 80
FAMILY_NAME_MAX = 80
ALLERGY_MAX = 64
ALLERGIES_MAX = 20
EXTRA_SHOTS_MAX = 6


@dataclass(frozen=True)
class Profile:
    """The fields a client sets on a customer (create, update, import)."""

    username: str = ""
    display_name: str = ""
    email: str = ""
    role: Role | None = None
    preferences: Preferences = field(default_factory=Preferences)
    dietary: Dietary = field(default_factory=Dietary)


# Exactly the code points of Unicode categories Cc (C0, DEL, C1) and Cs
# (surrogates): one regex scan instead of a category look-up per character.
CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _has_control(text: str) -> bool:
    return CONTROL_RE.search(text) is not None


def check_text(value: str, field: str, low: int, high: int) -> str:
    """Free text of low..high characters, not only blanks, without control characters."""
    if not low <= len(value) <= high:
        raise InvalidArgument(field, f"must be {low}..{high} characters, got {len(value)}")
    if low and not value.strip():
        raise InvalidArgument(field, "must not be blank")
    if _has_control(value):
        raise InvalidArgument(field, "must not contain control characters")
    return value


def check_username(value: str, field: str) -> str:
    if not USERNAME_RE.fullmatch(value):
        raise InvalidArgument(field, f"must be 3..32 characters of [a-z0-9_.-], got {value[:40]!r}")
    return value


def check_email(value: str, field: str) -> str | None:
    """An optional address: empty means none."""
    if not value:
        return None
    if len(value) > EMAIL_MAX or not EMAIL_RE.fullmatch(value) or _has_control(value):
        raise InvalidArgument(field, "must be an email address like name@example.com")
    return value


def _check_word(value: str | None, choices: tuple[str, ...], field: str) -> str | None:
    if value is not None and value not in choices:
        raise InvalidArgument(field, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def check_preferences(p: Preferences, field: str) -> Preferences:
    _check_word(p.milk, MILKS, f"{field}.milk")
    _check_word(p.size, SIZES, f"{field}.size")
    _check_word(p.temperature, TEMPERATURES, f"{field}.temperature")
    _check_word(p.sweetness, SWEETNESS, f"{field}.sweetness")
    _check_word(p.caffeine, CAFFEINE, f"{field}.caffeine")
    if not 0 <= p.extra_shots <= EXTRA_SHOTS_MAX:
        raise InvalidArgument(
            f"{field}.extra_shots", f"must be 0..{EXTRA_SHOTS_MAX}, got {p.extra_shots}"
        )
    return p


def check_dietary(d: Dietary, field: str) -> Dietary:
    for r in d.restrictions:
        _check_word(r, RESTRICTIONS, f"{field}.restrictions")
    if len(d.allergies) > ALLERGIES_MAX:
        raise InvalidArgument(
            f"{field}.allergies", f"at most {ALLERGIES_MAX} entries, got {len(d.allergies)}"
        )
    seen: dict[str, str] = {}
    for i, allergy in enumerate(d.allergies):
        check_text(allergy, f"{field}.allergies[{i}]", 1, ALLERGY_MAX)
        # "Peanuts" and "peanuts" are one allergy; the first spelling wins.
        seen.setdefault(allergy.strip().casefold(), allergy.strip())
    allergies = tuple(seen.values())
    if type(d.restrictions) is frozenset and allergies == d.allergies:
        return d  # already normal: no copy (imports check many thousands)
    return Dietary(restrictions=frozenset(d.restrictions), allergies=allergies)


def check_profile(p: Profile, field: str = "customer", *, require_role: bool = False) -> Profile:
    """The profile with normalised values, or InvalidArgument naming the first bad field.

    A missing role means "adult" on create; an update that writes it must set it."""
    username = check_username(p.username, f"{field}.username")
    display_name = check_text(p.display_name, f"{field}.display_name", 1, DISPLAY_NAME_MAX)
    email = check_email(p.email, f"{field}.email") or ""
    if require_role and p.role is None:
        raise InvalidArgument(f"{field}.role", "must be owner, adult or child")
    preferences = check_preferences(p.preferences, f"{field}.preferences")
    dietary = check_dietary(p.dietary, f"{field}.dietary")
    if email == p.email and dietary is p.dietary:
        return p  # already normal: no copy (the other checks return their input)
    return Profile(
        username=username,
        display_name=display_name,
        email=email,
        role=p.role,
        preferences=preferences,
        dietary=dietary,
    )


def check_family_name(value: str, field: str = "family.display_name") -> str:
    return check_text(value, field, 1, FAMILY_NAME_MAX)


# ---- Partial updates --------------------------------------------------------------

PREFERENCE_FIELDS = ("milk", "size", "temperature", "sweetness", "caffeine", "extra_shots")
DIETARY_FIELDS = ("restrictions", "allergies")
UPDATABLE_PATHS = frozenset(
    {"username", "display_name", "email", "role", "preferences", "dietary"}
    | {f"preferences.{f}" for f in PREFERENCE_FIELDS}
    | {f"dietary.{f}" for f in DIETARY_FIELDS}
)
# An empty mask replaces every updatable field.
FULL_MASK = ("username", "display_name", "email", "role", "preferences", "dietary")


def check_mask(paths: Sequence[str], field: str = "update_mask") -> tuple[str, ...]:
    for path in paths:
        if path not in UPDATABLE_PATHS:
            raise InvalidArgument(
                field,
                f"path {path[:60]!r} is not updatable; "
                f"updatable: {', '.join(sorted(UPDATABLE_PATHS))}",
            )
    return tuple(paths) or FULL_MASK


def apply_mask(current: Customer, patch: Profile, paths: Sequence[str]) -> Profile:
    """The profile that results from writing `patch`'s masked paths over `current`."""
    mask = check_mask(paths)
    prefs = current.preferences
    dietary = current.dietary
    values: dict[str, Any] = {
        "username": current.username or "",
        "display_name": current.display_name or "",
        "email": current.email or "",
        "role": current.role,
    }
    for path in mask:
        top, _, sub = path.partition(".")
        if top == "preferences":
            prefs = (
                patch.preferences
                if not sub
                else replace(prefs, **{sub: getattr(patch.preferences, sub)})
            )
        elif top == "dietary":
            dietary = (
                patch.dietary if not sub else replace(dietary, **{sub: getattr(patch.dietary, sub)})
            )
        else:
            values[top] = getattr(patch, top)
    return Profile(preferences=prefs, dietary=dietary, **values)
