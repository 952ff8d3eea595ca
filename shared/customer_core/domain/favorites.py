"""Favorite drinks: validation, the canonical customisation key, update masks.

Two favorites are the same when they are the same drink made the same way:
the customisation key is a canonical text of the customisation (syrups as a
sorted multiset, case and spacing folded), so "Vanilla, caramel" and
"caramel, vanilla " are one favorite and a duplicate is refused.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from customer_core.domain.customers import MILKS, SIZES, TEMPERATURES
from customer_core.errors import InvalidArgument

MAX_FAVORITES = 50
MAX_SHOTS = 6
MAX_SYRUPS = 5
MAX_SYRUP_LENGTH = 32
MAX_NOTES = 200
MAX_DRINK_ID = 64
MAX_DRINK_NAME = 80
UPDATE_PATHS = ("drink_id", "drink_name", "customization", "position")


@dataclass(frozen=True)
class Customization:
    size: str | None = None
    milk: str | None = None
    shots: int = 0
    syrups: tuple[str, ...] = ()
    temperature: str | None = None
    notes: str = ""


@dataclass(frozen=True)
class Draft:
    """What a client sets on a favorite (position aside: that is a move)."""

    drink_id: str
    drink_name: str
    customization: Customization = field(default_factory=Customization)


@dataclass(frozen=True)
class Favorite:
    id: uuid.UUID
    customer_id: uuid.UUID
    drink_id: str
    drink_name: str
    customization: Customization
    position: int
    is_usual: bool = False
    create_time: datetime | None = None
    update_time: datetime | None = None


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def customization_key(c: Customization) -> str:
    """Canonical text of a customisation: equal for drinks made the same way."""
    canonical = {
        "size": c.size or "",
        "milk": c.milk or "",
        "shots": c.shots,
        "syrups": sorted(_fold(s) for s in c.syrups),
        "temperature": c.temperature or "",
        "notes": _fold(c.notes),
    }
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"))


def _check_choice(value: str | None, allowed: Iterable[str], field: str) -> None:
    if value is not None and value not in allowed:
        raise InvalidArgument(field, f"unknown value {value!r}")


def check_customization(c: Customization, field: str = "favorite.customization") -> Customization:
    """Validated, with syrups and notes trimmed; INVALID_ARGUMENT names the field."""
    _check_choice(c.size, SIZES, f"{field}.size")
    _check_choice(c.milk, MILKS, f"{field}.milk")
    _check_choice(c.temperature, TEMPERATURES, f"{field}.temperature")
    if not 0 <= c.shots <= MAX_SHOTS:
        raise InvalidArgument(f"{field}.shots", f"must be 0..{MAX_SHOTS}, got {c.shots}")
    syrups = tuple(" ".join(s.split()) for s in c.syrups)
    if len(syrups) > MAX_SYRUPS:
        raise InvalidArgument(f"{field}.syrups", f"at most {MAX_SYRUPS}, got {len(syrups)}")
    for i, syrup in enumerate(syrups):
        if not 1 <= len(syrup) <= MAX_SYRUP_LENGTH or not syrup.isprintable():
            raise InvalidArgument(
                f"{field}.syrups[{i}]", f"must be 1..{MAX_SYRUP_LENGTH} printable characters"
            )
    notes = c.notes.strip()
    if len(notes) > MAX_NOTES:
        raise InvalidArgument(f"{field}.notes", f"at most {MAX_NOTES} characters")
    if not all(ch.isprintable() or ch in "\n\t" for ch in notes):
        raise InvalidArgument(f"{field}.notes", "must not contain control characters")
    return replace(c, syrups=syrups, notes=notes)


def check_draft(d: Draft, field: str = "favorite") -> Draft:
    drink_id = d.drink_id.strip()
    if not 1 <= len(drink_id) <= MAX_DRINK_ID or not drink_id.isprintable():
        raise InvalidArgument(
            f"{field}.drink_id", f"required, 1..{MAX_DRINK_ID} printable characters"
        )
    drink_name = " ".join(d.drink_name.split())
    if not 1 <= len(drink_name) <= MAX_DRINK_NAME or not drink_name.isprintable():
        raise InvalidArgument(
            f"{field}.drink_name", f"required, 1..{MAX_DRINK_NAME} printable characters"
        )
    return Draft(
        drink_id, drink_name, check_customization(d.customization, f"{field}.customization")
    )


def check_mask(paths: Iterable[str], field: str = "update_mask") -> tuple[str, ...]:
    """The update paths; an empty mask means every updatable field."""
    chosen = tuple(dict.fromkeys(paths))
    for path in chosen:
        if path not in UPDATE_PATHS:
            raise InvalidArgument(
                f"{field}.paths", f"unknown path {path!r}; use {', '.join(UPDATE_PATHS)}"
            )
    return chosen or UPDATE_PATHS


def apply_mask(current: Favorite, patch: Draft, paths: Iterable[str]) -> Draft:
    """The favorite's drink after applying the masked fields of `patch` (position aside)."""
    chosen = set(paths)
    return Draft(
        drink_id=patch.drink_id if "drink_id" in chosen else current.drink_id,
        drink_name=patch.drink_name if "drink_name" in chosen else current.drink_name,
        customization=(patch.customization if "customization" in chosen else current.customization),
    )


def check_position(position: int, field: str = "favorite.position") -> int:
    if position < 0:
        raise InvalidArgument(field, f"must not be negative, got {position}")
    return position
