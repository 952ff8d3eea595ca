"""Families and customers: protobuf messages <-> domain values.

The enum maps here are shared: favorites reuse size/milk/temperature. A proto
enum's UNSPECIFIED zero is the domain's None ("no preference"); a number the
contract does not define is INVALID_ARGUMENT naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar, cast

from google.protobuf.descriptor import EnumDescriptor

from customer_api.convert import timestamp
from customer_core.domain import names
from customer_core.domain.customers import (
    CAFFEINE,
    MILKS,
    RESTRICTIONS,
    SIZES,
    SWEETNESS,
    TEMPERATURES,
    Customer,
    Dietary,
    Family,
    Preferences,
    Profile,
    Role,
)
from customer_core.errors import InvalidArgument
from customer_core.pb.customer.v1 import customer_pb2 as pb

V = TypeVar("V", bound=int)


class EnumMap(Generic[V]):
    """Lower-case domain words <-> one proto enum (`oat` <-> MILK_TYPE_OAT)."""

    def __init__(self, enum: EnumDescriptor, prefix: str, words: Iterable[str]) -> None:
        by_name = enum.values_by_name
        self._to_pb = {w: cast(V, by_name[f"{prefix}_{w.upper()}"].number) for w in words}
        self._from_pb = {int(v): w for w, v in self._to_pb.items()}

    def to_pb(self, word: str | None) -> V:
        return self._to_pb[word] if word else cast(V, 0)

    def from_pb(self, value: int, field: str) -> str | None:
        if value == 0:
            return None
        try:
            return self._from_pb[value]
        except KeyError:
            raise InvalidArgument(field, f"unknown enum value {value}") from None


MILK = EnumMap[pb.MilkType.ValueType](pb.MilkType.DESCRIPTOR, "MILK_TYPE", MILKS)
SIZE = EnumMap[pb.DrinkSize.ValueType](pb.DrinkSize.DESCRIPTOR, "DRINK_SIZE", SIZES)
TEMPERATURE = EnumMap[pb.Temperature.ValueType](
    pb.Temperature.DESCRIPTOR, "TEMPERATURE", TEMPERATURES
)
SWEET = EnumMap[pb.Sweetness.ValueType](pb.Sweetness.DESCRIPTOR, "SWEETNESS", SWEETNESS)
CAFFEINE_LEVEL = EnumMap[pb.CaffeineLevel.ValueType](
    pb.CaffeineLevel.DESCRIPTOR, "CAFFEINE_LEVEL", CAFFEINE
)
RESTRICTION = EnumMap[pb.DietaryRestriction.ValueType](
    pb.DietaryRestriction.DESCRIPTOR, "DIETARY_RESTRICTION", RESTRICTIONS
)
ROLE = EnumMap[pb.FamilyRole.ValueType](
    pb.FamilyRole.DESCRIPTOR, "FAMILY_ROLE", [r.value for r in Role]
)


def milk_to_pb(word: str | None) -> pb.MilkType.ValueType:
    return MILK.to_pb(word)


def milk_from_pb(value: int, field: str) -> str | None:
    return MILK.from_pb(value, field)


def size_to_pb(word: str | None) -> pb.DrinkSize.ValueType:
    return SIZE.to_pb(word)


def size_from_pb(value: int, field: str) -> str | None:
    return SIZE.from_pb(value, field)


def temperature_to_pb(word: str | None) -> pb.Temperature.ValueType:
    return TEMPERATURE.to_pb(word)


def temperature_from_pb(value: int, field: str) -> str | None:
    return TEMPERATURE.from_pb(value, field)


def role_to_pb(role: Role | None) -> pb.FamilyRole.ValueType:
    return ROLE.to_pb(role.value if role else None)


def role_from_pb(value: int, field: str) -> Role | None:
    word = ROLE.from_pb(value, field)
    return Role(word) if word else None


def preferences_to_pb(p: Preferences) -> pb.Preferences:
    return pb.Preferences(
        milk=MILK.to_pb(p.milk),
        size=SIZE.to_pb(p.size),
        temperature=TEMPERATURE.to_pb(p.temperature),
        sweetness=SWEET.to_pb(p.sweetness),
        caffeine=CAFFEINE_LEVEL.to_pb(p.caffeine),
        extra_shots=p.extra_shots,
    )


def preferences_from_pb(m: pb.Preferences, field: str) -> Preferences:
    return Preferences(
        milk=MILK.from_pb(m.milk, f"{field}.milk"),
        size=SIZE.from_pb(m.size, f"{field}.size"),
        temperature=TEMPERATURE.from_pb(m.temperature, f"{field}.temperature"),
        sweetness=SWEET.from_pb(m.sweetness, f"{field}.sweetness"),
        caffeine=CAFFEINE_LEVEL.from_pb(m.caffeine, f"{field}.caffeine"),
        extra_shots=m.extra_shots,
    )


def dietary_to_pb(d: Dietary) -> pb.Dietary:
    return pb.Dietary(
        restrictions=sorted(RESTRICTION.to_pb(r) for r in d.restrictions),
        allergies=list(d.allergies),
    )


def dietary_from_pb(m: pb.Dietary, field: str) -> Dietary:
    words = set()
    for value in m.restrictions:
        word = RESTRICTION.from_pb(value, f"{field}.restrictions")
        if word is None:
            raise InvalidArgument(f"{field}.restrictions", "must not contain UNSPECIFIED")
        words.add(word)
    return Dietary(restrictions=frozenset(words), allergies=tuple(m.allergies))


def profile_from_pb(m: pb.Customer, field: str = "customer") -> Profile:
    """The client-settable fields of a Customer message (not yet validated)."""
    return Profile(
        username=m.username,
        display_name=m.display_name,
        email=m.email,
        role=role_from_pb(m.role, f"{field}.role"),
        preferences=preferences_from_pb(m.preferences, f"{field}.preferences"),
        dietary=dietary_from_pb(m.dietary, f"{field}.dietary"),
    )


def customer_to_pb(c: Customer) -> pb.Customer:
    return pb.Customer(
        name=names.customer_name(c.id),
        family=names.family_name(c.family_id),
        username=c.username or "",
        display_name=c.display_name or "",
        email=c.email or "",
        role=role_to_pb(c.role),
        preferences=preferences_to_pb(c.preferences),
        dietary=dietary_to_pb(c.dietary),
        state=pb.CUSTOMER_STATE_DELETED if c.deleted else pb.CUSTOMER_STATE_ACTIVE,
        external_id=c.external_id or "",
        create_time=timestamp(c.create_time),
        update_time=timestamp(c.update_time),
    )


def family_to_pb(f: Family) -> pb.Family:
    return pb.Family(
        name=names.family_name(f.id),
        display_name=f.display_name,
        member_count=f.member_count,
        wallet_pooled=f.wallet_pooled,
        create_time=timestamp(f.create_time),
        update_time=timestamp(f.update_time),
    )
