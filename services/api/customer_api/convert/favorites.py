"""Favorites: protobuf messages <-> domain values."""

from __future__ import annotations

from customer_api.convert import timestamp
from customer_api.convert.customers import (
    milk_from_pb,
    milk_to_pb,
    size_from_pb,
    size_to_pb,
    temperature_from_pb,
    temperature_to_pb,
)
from customer_core.domain import names
from customer_core.domain.favorites import Customization, Draft, Favorite
from customer_core.pb.customer.v1 import customer_pb2 as pb


def customization_from_pb(m: pb.Customization, field: str) -> Customization:
    return Customization(
        size=size_from_pb(m.size, f"{field}.size"),
        milk=milk_from_pb(m.milk, f"{field}.milk"),
        shots=m.shots,
        syrups=tuple(m.syrups),
        temperature=temperature_from_pb(m.temperature, f"{field}.temperature"),
        notes=m.notes,
    )


def customization_to_pb(c: Customization) -> pb.Customization:
    return pb.Customization(
        size=size_to_pb(c.size),
        milk=milk_to_pb(c.milk),
        shots=c.shots,
        syrups=list(c.syrups),
        temperature=temperature_to_pb(c.temperature),
        notes=c.notes,
    )


def draft_from_pb(m: pb.Favorite, field: str = "favorite") -> Draft:
    """The client-settable fields of a Favorite message (validated by the use case)."""
    return Draft(
        drink_id=m.drink_id,
        drink_name=m.drink_name,
        customization=customization_from_pb(m.customization, f"{field}.customization"),
    )


def favorite_to_pb(f: Favorite) -> pb.Favorite:
    return pb.Favorite(
        name=names.favorite_name(f.customer_id, f.id),
        drink_id=f.drink_id,
        drink_name=f.drink_name,
        customization=customization_to_pb(f.customization),
        position=f.position,
        is_usual=f.is_usual,
        create_time=timestamp(f.create_time),
        update_time=timestamp(f.update_time),
    )
