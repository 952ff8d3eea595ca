"""Bad input is INVALID_ARGUMENT naming the field, never INTERNAL (tables and Hypothesis)."""

from __future__ import annotations

import asyncio
import string
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.integration.customers.conftest import new_customer

Stub = customer_pb2_grpc.CustomerServiceStub
T = TypeVar("T")
UNKNOWN_FAMILY = "families/00000000-0000-4000-8000-000000000000"


def bad_creates(family: str) -> list[tuple[pb.Customer, str]]:
    def c(**fields: Any) -> pb.Customer:
        return new_customer(family, **fields)

    return [
        (c(username="ab"), "customer.username"),
        (c(username="has space"), "customer.username"),
        (c(username="x" * 33), "customer.username"),
        (c(display_name=""), "customer.display_name"),
        (c(display_name="   "), "customer.display_name"),
        (c(display_name="x" * 81), "customer.display_name"),
        (c(display_name="nul\x00byte"), "customer.display_name"),
        (c(email="not-an-address"), "customer.email"),
        (c(email="a@b"), "customer.email"),
        (c(role=9), "customer.role"),
        (c(preferences=pb.Preferences(milk=99)), "customer.preferences.milk"),
        (c(preferences=pb.Preferences(size=-1)), "customer.preferences.size"),
        (c(preferences=pb.Preferences(extra_shots=7)), "customer.preferences.extra_shots"),
        (c(preferences=pb.Preferences(extra_shots=-1)), "customer.preferences.extra_shots"),
        (c(dietary=pb.Dietary(restrictions=[0])), "customer.dietary.restrictions"),
        (c(dietary=pb.Dietary(restrictions=[42])), "customer.dietary.restrictions"),
        (c(dietary=pb.Dietary(allergies=[""])), "customer.dietary.allergies[0]"),
        (c(dietary=pb.Dietary(allergies=["ok", "y" * 65])), "customer.dietary.allergies[1]"),
        (
            c(dietary=pb.Dietary(allergies=[f"a{i}" for i in range(21)])),
            "customer.dietary.allergies",
        ),
        (pb.Customer(username="fine", display_name="Fine"), "customer.family"),
        (
            pb.Customer(
                family="customers/00000000-0000-4000-8000-000000000000",
                username="fine",
                display_name="Fine",
            ),
            "customer.family",
        ),
    ]


async def test_bad_creates_name_the_field(api: Stub, family: pb.Family) -> None:
    for customer, field in bad_creates(family.name):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await api.CreateCustomer(pb.CreateCustomerRequest(customer=customer))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert (caught.value.details() or "").startswith(f"{field}:"), caught.value.details()


async def test_create_in_an_unknown_family_is_not_found(api: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(UNKNOWN_FAMILY)))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_updates_name_the_field(api: Stub, family: pb.Family) -> None:
    c = await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name)))
    cases = [
        (pb.Customer(display_name="x"), ["display_name"], "customer.name"),
        (pb.Customer(name=c.name), ["preferences.whipped_cream"], "update_mask"),
        (pb.Customer(name=c.name), ["name"], "update_mask"),
        (pb.Customer(name=c.name), ["role"], "customer.role"),
        (pb.Customer(name=c.name, email="@"), ["email"], "customer.email"),
        # An empty mask replaces everything, so a missing username is refused.
        (pb.Customer(name=c.name, display_name="Only"), [], "customer.username"),
    ]
    for patch, paths, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await api.UpdateCustomer(
                pb.UpdateCustomerRequest(customer=patch, update_mask=FieldMask(paths=paths))
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert (caught.value.details() or "").startswith(f"{field}:"), caught.value.details()


async def test_get_needs_a_name_or_username(api: Stub) -> None:
    for request, field in [
        (pb.GetCustomerRequest(), "name"),
        (pb.GetCustomerRequest(name="customers/42"), "name"),
        (pb.GetCustomerRequest(name="families/00000000-0000-4000-8000-000000000000"), "name"),
        # PostgreSQL refuses NUL in text: it must never reach a query (was INTERNAL).
        (pb.GetCustomerRequest(username="ana\x00rivera"), "username"),
        (pb.GetCustomerRequest(username="no spaces"), "username"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await api.GetCustomer(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (caught.value.details() or "").startswith(f"{field}:")


# ---- Generated input ----------------------------------------------------------------

# Any text a client can send (protobuf refuses lone surrogates before the wire).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=100)
USERNAMES = st.one_of(TEXT, st.text(string.ascii_letters + string.digits + "_.-", max_size=40))
ENUMS = st.integers(-3, 15)
PATHS = st.lists(
    st.sampled_from(
        [
            "username",
            "display_name",
            "email",
            "role",
            "preferences",
            "preferences.milk",
            "preferences.extra_shots",
            "dietary",
            "dietary.allergies",
            "dietary.restrictions",
            "family",
            "name",
            "state",
            "preferences.nope",
            "",
            "dietary.",
        ]
    ),
    max_size=4,
)


@st.composite
def customers(draw: st.DrawFn, family: str) -> pb.Customer:
    return pb.Customer(
        family=draw(st.sampled_from([family, "", "families/x", UNKNOWN_FAMILY])),
        username=draw(USERNAMES),
        display_name=draw(TEXT),
        email=draw(st.one_of(TEXT, st.emails())),
        role=draw(ENUMS),
        preferences=pb.Preferences(
            milk=draw(ENUMS),
            size=draw(ENUMS),
            temperature=draw(ENUMS),
            sweetness=draw(ENUMS),
            caffeine=draw(ENUMS),
            extra_shots=draw(st.integers(-(2**31), 2**31 - 1)),
        ),
        dietary=pb.Dietary(
            restrictions=draw(st.lists(ENUMS, max_size=5)),
            allergies=draw(st.lists(TEXT, max_size=22)),
        ),
    )


ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.NOT_FOUND,
}


def outcome(
    run: Callable[[Callable[[], Awaitable[T]]], T], call: Callable[[], Awaitable[T]]
) -> tuple[grpc.StatusCode, str]:
    try:
        run(call)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def check(code: grpc.StatusCode, details: str, fields: tuple[str, ...]) -> None:
    assert code in ALLOWED, (code, details)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        assert details.startswith(fields), details


async def test_generated_creates_and_updates_never_fail_internally(
    api: Stub, family: pb.Family
) -> None:
    loop = asyncio.get_running_loop()
    target = await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name)))

    def run(call: Callable[[], Awaitable[T]]) -> T:
        # The call is made on the loop's thread: grpc.aio objects belong to their loop.
        async def wait() -> T:
            return await call()

        return asyncio.run_coroutine_threadsafe(wait(), loop).result(timeout=60)

    opts = settings(
        max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )

    @opts
    @given(customers(family.name))
    def creates(customer: pb.Customer) -> None:
        request = pb.CreateCustomerRequest(customer=customer)
        check(*outcome(run, lambda: api.CreateCustomer(request)), ("customer.",))

    @opts
    @given(customers(family.name), PATHS)
    def updates(customer: pb.Customer, paths: list[str]) -> None:
        customer.name = target.name
        request = pb.UpdateCustomerRequest(customer=customer, update_mask=FieldMask(paths=paths))
        check(*outcome(run, lambda: api.UpdateCustomer(request)), ("customer.", "update_mask:"))

    # Hypothesis drives synchronously, from a thread, while this loop serves the calls.
    await asyncio.to_thread(creates)
    await asyncio.to_thread(updates)
