"""Families and their members as domain values.

Enumerations are lower-case words ("oat", "large"); the api maps them to and
from the proto enums. `None` means "not set / no preference".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


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
    "vegetarian", "vegan", "dairy_free", "lactose_free", "gluten_free", "nut_free",
    "soy_free", "sugar_free", "halal", "kosher",
)  # fmt: skip


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
