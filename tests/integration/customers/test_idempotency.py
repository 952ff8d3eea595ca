"""Idempotency keys: one effect per key, the first response replayed, conflicts refused."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from customer_core.context import Context
from customer_core.errors import IdempotencyConflict
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from customer_core.usecases import idempotency
from customer_core.usecases.families import FamilyCodec
from tests.integration.customers.conftest import new_customer

Stub = customer_pb2_grpc.CustomerServiceStub


async def count(ctx: Context, sql: str) -> int:
    async with ctx.pool.acquire() as conn:
        return int(await conn.fetchval(sql))


async def test_retry_with_the_same_key_returns_the_first_response(
    api: Stub, family: pb.Family, ctx: Context
) -> None:
    request = pb.CreateCustomerRequest(
        customer=new_customer(family.name, "retry_me"), idempotency_key="k-create-1"
    )
    first = await api.CreateCustomer(request)
    # The profile changes in between; the retry still answers what the first call did.
    await api.UpdateCustomer(
        pb.UpdateCustomerRequest(
            customer=pb.Customer(name=first.name, display_name="Changed"),
            update_mask=FieldMask(paths=["display_name"]),
        )
    )
    second = await api.CreateCustomer(request)
    assert second == first
    assert await count(ctx, "SELECT count(*) FROM customers") == 1


async def test_same_key_with_a_different_request_is_failed_precondition(
    api: Stub, family: pb.Family
) -> None:
    await api.CreateCustomer(
        pb.CreateCustomerRequest(customer=new_customer(family.name, "one"), idempotency_key="k")
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.CreateCustomer(
            pb.CreateCustomerRequest(customer=new_customer(family.name, "two"), idempotency_key="k")
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "idempotency_key" in (caught.value.details() or "")
    # Another method with the same key is a different request too.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.CreateFamily(
            pb.CreateFamilyRequest(family=pb.Family(display_name="X"), idempotency_key="k")
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_concurrent_calls_with_one_key_make_one_effect(api: Stub, ctx: Context) -> None:
    request = pb.CreateFamilyRequest(
        family=pb.Family(display_name="Concurrent"), idempotency_key=str(uuid.uuid4())
    )
    replies = await asyncio.gather(*(api.CreateFamily(request) for _ in range(8)))
    assert len({r.name for r in replies}) == 1
    assert await count(ctx, "SELECT count(*) FROM families") == 1
    assert await count(ctx, "SELECT count(*) FROM idempotency_keys") == 1


async def test_a_failed_call_stores_nothing_and_can_be_retried(
    api: Stub, family: pb.Family
) -> None:
    taken = await api.CreateCustomer(
        pb.CreateCustomerRequest(customer=new_customer(family.name, "wanted"))
    )
    request = pb.CreateCustomerRequest(
        customer=new_customer(family.name, "wanted"), idempotency_key="k-retry"
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.CreateCustomer(request)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    await api.DeleteCustomer(pb.DeleteCustomerRequest(name=taken.name))
    created = await api.CreateCustomer(request)
    assert created.username == "wanted"


async def test_delete_retried_with_its_key_succeeds_again(api: Stub, family: pb.Family) -> None:
    c = await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name)))
    request = pb.DeleteCustomerRequest(name=c.name, idempotency_key="k-del")
    await api.DeleteCustomer(request)
    await api.DeleteCustomer(request)  # the retry: same answer, no NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.DeleteCustomer(pb.DeleteCustomerRequest(name=c.name))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("key", ["x" * 129, "caf\u00e9", "tab\there"])
async def test_malformed_key_is_invalid_argument(api: Stub, key: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.CreateFamily(
            pb.CreateFamilyRequest(family=pb.Family(display_name="X"), idempotency_key=key)
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("idempotency_key:")


async def test_response_and_effect_commit_together(ctx: Context) -> None:
    """An effect that fails after writing leaves neither its rows nor the key behind."""
    call = idempotency.Call.of("k-atomic", "Test", b"request")

    async def effect(conn: object) -> None:
        await conn.execute(  # type: ignore[attr-defined]
            "INSERT INTO families (id, display_name) VALUES ($1, 'half')", uuid.uuid4()
        )
        raise RuntimeError("crash after the write")

    with pytest.raises(RuntimeError):
        await idempotency.run(ctx.pool, call, effect, FamilyCodec())  # type: ignore[arg-type]
    assert await count(ctx, "SELECT count(*) FROM families") == 0
    assert await count(ctx, "SELECT count(*) FROM idempotency_keys") == 0
    async with ctx.pool.acquire() as conn, conn.transaction():
        assert await idempotency.begin(conn, call) is None
        await idempotency.finish(conn, call, b"answer")
    async with ctx.pool.acquire() as conn, conn.transaction():
        assert await idempotency.begin(conn, call) == b"answer"
    other = idempotency.Call.of("k-atomic", "Test", b"other")
    async with ctx.pool.acquire() as conn:
        with pytest.raises(IdempotencyConflict):
            async with conn.transaction():
                await idempotency.begin(conn, other)
