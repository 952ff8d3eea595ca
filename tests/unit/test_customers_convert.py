"""Proto <-> domain conversion of customers round-trips, and the JSON codecs too."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_api.convert.customers import (
    customer_to_pb,
    milk_from_pb,
    milk_to_pb,
    profile_from_pb,
    size_from_pb,
    size_to_pb,
    temperature_from_pb,
    temperature_to_pb,
)
from customer_core.domain.customers import (
    CAFFEINE,
    MILKS,
    RESTRICTIONS,
    SIZES,
    SWEETNESS,
    TEMPERATURES,
    Customer,
    Dietary,
    Preferences,
    Role,
)
from customer_core.errors import InvalidArgument
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.usecases.customers import CustomerCodec


def maybe(words: tuple[str, ...]) -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), st.sampled_from(words))


customers = st.builds(
    Customer,
    id=st.uuids(),
    family_id=st.uuids(),
    username=st.from_regex(r"[a-z0-9_.-]{3,32}", fullmatch=True),
    display_name=st.text(min_size=1, max_size=80),
    email=st.one_of(st.none(), st.emails()),
    role=st.sampled_from(list(Role)),
    preferences=st.builds(
        Preferences,
        milk=maybe(MILKS),
        size=maybe(SIZES),
        temperature=maybe(TEMPERATURES),
        sweetness=maybe(SWEETNESS),
        caffeine=maybe(CAFFEINE),
        extra_shots=st.integers(0, 6),
    ),
    dietary=st.builds(
        Dietary,
        restrictions=st.frozensets(st.sampled_from(RESTRICTIONS)),
        allergies=st.lists(st.text(min_size=1, max_size=64), max_size=20).map(tuple),
    ),
    deleted=st.booleans(),
    create_time=st.datetimes(timezones=st.just(UTC)),
    update_time=st.datetimes(timezones=st.just(UTC)),
)


@given(customers)
def test_profile_survives_a_trip_through_protobuf(c: Customer) -> None:
    m = pb.Customer.FromString(customer_to_pb(c).SerializeToString())
    p = profile_from_pb(m)
    assert (p.username, p.display_name, p.email or None, p.role) == (
        c.username,
        c.display_name,
        c.email,
        c.role,
    )
    assert p.preferences == c.preferences
    assert p.dietary == c.dietary
    assert m.state == (pb.CUSTOMER_STATE_DELETED if c.deleted else pb.CUSTOMER_STATE_ACTIVE)


@given(customers)
def test_codec_round_trips(c: Customer) -> None:
    codec = CustomerCodec()
    assert codec.decode(codec.encode(c)) == c


def test_enum_maps_for_favorites() -> None:
    for word in SIZES:
        assert size_from_pb(size_to_pb(word), "f") == word
    for word in MILKS:
        assert milk_from_pb(milk_to_pb(word), "f") == word
    for word in TEMPERATURES:
        assert temperature_from_pb(temperature_to_pb(word), "f") == word
    assert size_to_pb(None) == pb.DRINK_SIZE_UNSPECIFIED
    assert size_from_pb(pb.DRINK_SIZE_UNSPECIFIED, "f") is None
    assert milk_to_pb("oat") == pb.MILK_TYPE_OAT


def test_unknown_enum_number_names_the_field() -> None:
    with pytest.raises(InvalidArgument) as caught:
        size_from_pb(77, "favorite.customization.size")
    assert caught.value.field == "favorite.customization.size"


def test_output_names_and_times() -> None:
    cid, fid = uuid.uuid4(), uuid.uuid4()
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    m = customer_to_pb(
        Customer(id=cid, family_id=fid, username="ana", display_name="A", create_time=now)
    )
    assert m.name == f"customers/{cid}"
    assert m.family == f"families/{fid}"
    assert m.create_time.ToDatetime(tzinfo=UTC) == now
    assert not m.HasField("update_time")
