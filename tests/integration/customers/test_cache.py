"""GetCustomer is cached in Valkey, and no read after a write returns the old profile."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.integration.customers.conftest import new_customer

Stub = customer_pb2_grpc.CustomerServiceStub
NAME_MASK = FieldMask(paths=["display_name"])


def rename(name: str, display_name: str) -> pb.UpdateCustomerRequest:
    return pb.UpdateCustomerRequest(
        customer=pb.Customer(name=name, display_name=display_name), update_mask=NAME_MASK
    )


async def test_reads_are_served_from_the_cache(api: Stub, family: pb.Family, ctx: Context) -> None:
    c = await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name)))
    await api.GetCustomer(pb.GetCustomerRequest(name=c.name))
    # Behind the service's back: only a cached copy can still say the old name.
    async with ctx.pool.acquire() as conn:
        await conn.execute(
            "UPDATE customers SET display_name = 'sneaky' WHERE id = $1",
            uuid.UUID(c.name.split("/")[1]),
        )
    cached = await api.GetCustomer(pb.GetCustomerRequest(name=c.name))
    assert cached.display_name == c.display_name
    await ctx.cache.invalidate(uuid.UUID(c.name.split("/")[1]))
    fresh = await api.GetCustomer(pb.GetCustomerRequest(name=c.name))
    assert fresh.display_name == "sneaky"


async def test_no_stale_read_after_an_update(api: Stub, family: pb.Family) -> None:
    c = await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name)))
    for i in range(15):
        await api.GetCustomer(pb.GetCustomerRequest(name=c.name))  # fills the cache
        await api.UpdateCustomer(rename(c.name, f"name {i}"))
        got = await api.GetCustomer(pb.GetCustomerRequest(name=c.name))
        assert got.display_name == f"name {i}"


async def race(api: Stub, name: str, tag: str) -> None:
    """Four readers loop over GetCustomer while three writers rename the customer."""
    done = asyncio.Event()

    async def reader() -> None:
        while not done.is_set():
            await api.GetCustomer(pb.GetCustomerRequest(name=name))

    async def writer(w: int) -> None:
        for i in range(6):
            await api.UpdateCustomer(rename(name, f"{tag} w{w} #{i}"))

    readers = [asyncio.create_task(reader()) for _ in range(4)]
    try:
        await asyncio.gather(*(writer(w) for w in range(3)))
    finally:
        done.set()
        await asyncio.gather(*readers)


async def test_concurrent_reads_never_outlive_the_last_write(
    api: Stub, family: pb.Family, ctx: Context
) -> None:
    c = await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name)))
    for round_ in range(3):
        await race(api, c.name, f"r{round_}")
        async with ctx.pool.acquire() as conn:
            last = await conn.fetchval(
                "SELECT display_name FROM customers WHERE id = $1",
                uuid.UUID(c.name.split("/")[1]),
            )
        assert last.startswith(f"r{round_} ")
        for _ in range(3):
            got = await api.GetCustomer(pb.GetCustomerRequest(name=c.name))
            assert got.display_name == last


async def test_a_deleted_customer_is_not_served_from_the_cache(
    api: Stub, family: pb.Family
) -> None:
    c = await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name)))
    await api.GetCustomer(pb.GetCustomerRequest(name=c.name))
    await api.DeleteCustomer(pb.DeleteCustomerRequest(name=c.name))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.GetCustomer(pb.GetCustomerRequest(name=c.name))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
