"""Families and customers end to end through a real server, PostgreSQL and Valkey."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.integration.customers.conftest import new_customer

Stub = customer_pb2_grpc.CustomerServiceStub


async def expect(code: grpc.StatusCode, call: object) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == code, caught.value.details()
    return caught.value.details() or ""


async def test_create_and_read_back_a_family_with_members(api: Stub, family: pb.Family) -> None:
    assert family.name.startswith("families/")
    assert family.display_name == "Rivera"
    ana = await api.CreateCustomer(
        pb.CreateCustomerRequest(
            customer=new_customer(
                family.name,
                "ana.rivera",
                role=pb.FAMILY_ROLE_OWNER,
                email="ana@example.com",
                preferences=pb.Preferences(milk=pb.MILK_TYPE_OAT, extra_shots=2),
                dietary=pb.Dietary(
                    restrictions=[pb.DIETARY_RESTRICTION_VEGAN, pb.DIETARY_RESTRICTION_VEGAN],
                    allergies=["peanuts", "Peanuts"],
                ),
            )
        )
    )
    assert ana.state == pb.CUSTOMER_STATE_ACTIVE
    assert list(ana.dietary.restrictions) == [pb.DIETARY_RESTRICTION_VEGAN]
    assert list(ana.dietary.allergies) == ["peanuts"]
    got = await api.GetCustomer(pb.GetCustomerRequest(name=ana.name))
    assert got == ana
    by_username = await api.GetCustomer(pb.GetCustomerRequest(username="ANA.RIVERA"))
    assert by_username.name == ana.name
    again = await api.GetFamily(pb.GetFamilyRequest(name=family.name))
    assert again.member_count == 1


async def test_every_customer_gets_a_loyalty_account(
    api: Stub, family: pb.Family, ctx: Context
) -> None:
    c = await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name)))
    async with ctx.pool.acquire() as conn:
        balance = await conn.fetchval(
            "SELECT balance FROM loyalty_accounts WHERE customer_id = $1",
            uuid.UUID(c.name.split("/")[1]),
        )
    assert balance == 0


async def test_username_is_unique_case_insensitively(api: Stub, family: pb.Family) -> None:
    await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name, "Bo_1")))
    details = await expect(
        grpc.StatusCode.ALREADY_EXISTS,
        api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name, "bo_1"))),
    )
    assert "bo_1" in details


async def test_update_with_nested_mask_changes_only_that_path(api: Stub, family: pb.Family) -> None:
    c = await api.CreateCustomer(
        pb.CreateCustomerRequest(
            customer=new_customer(
                family.name,
                preferences=pb.Preferences(milk=pb.MILK_TYPE_OAT, size=pb.DRINK_SIZE_LARGE),
            )
        )
    )
    patch = pb.Customer(
        name=c.name,
        display_name="ignored",
        preferences=pb.Preferences(milk=pb.MILK_TYPE_SOY, size=pb.DRINK_SIZE_SMALL),
    )
    updated = await api.UpdateCustomer(
        pb.UpdateCustomerRequest(customer=patch, update_mask=FieldMask(paths=["preferences.milk"]))
    )
    assert updated.preferences.milk == pb.MILK_TYPE_SOY
    assert updated.preferences.size == pb.DRINK_SIZE_LARGE
    assert updated.display_name == c.display_name
    got = await api.GetCustomer(pb.GetCustomerRequest(name=c.name))
    assert got.preferences.milk == pb.MILK_TYPE_SOY


async def test_unknown_mask_path_is_invalid_argument_naming_update_mask(
    api: Stub, family: pb.Family
) -> None:
    c = await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name)))
    details = await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        api.UpdateCustomer(
            pb.UpdateCustomerRequest(
                customer=pb.Customer(name=c.name), update_mask=FieldMask(paths=["family"])
            )
        ),
    )
    assert details.startswith("update_mask:")


async def test_delete_erases_personal_data_and_second_delete_is_not_found(
    api: Stub, family: pb.Family, ctx: Context
) -> None:
    c = await api.CreateCustomer(
        pb.CreateCustomerRequest(customer=new_customer(family.name, "gone", email="g@x.org"))
    )
    await api.GetCustomer(pb.GetCustomerRequest(name=c.name))  # now cached
    await api.DeleteCustomer(pb.DeleteCustomerRequest(name=c.name))
    await expect(grpc.StatusCode.NOT_FOUND, api.GetCustomer(pb.GetCustomerRequest(name=c.name)))
    await expect(
        grpc.StatusCode.NOT_FOUND, api.DeleteCustomer(pb.DeleteCustomerRequest(name=c.name))
    )
    async with ctx.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT username, display_name, email FROM customers WHERE id = $1",
            uuid.UUID(c.name.split("/")[1]),
        )
    assert tuple(row) == (None, None, None)
    # The username is free again.
    await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name, "gone")))
