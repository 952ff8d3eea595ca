"""Server behaviour under limits: client deadlines bound database work; big messages are refused."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from customer_api.server import build_server
from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.support.open_api import NO_AUTH

Stub = customer_pb2_grpc.CustomerServiceStub

WAITING_ON_LOCKS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND state = 'active' AND wait_event_type = 'Lock'
"""


async def poll(check: object, seconds: float = 20.0) -> bool:
    """True as soon as `check()` is true; False after `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if await check():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.1)
    return False


async def test_a_deadline_cancels_the_database_work_it_started(api: Stub, ctx: Context) -> None:
    family = await api.CreateFamily(pb.CreateFamilyRequest(family=pb.Family(display_name="D")))
    c = await api.CreateCustomer(
        pb.CreateCustomerRequest(
            customer=pb.Customer(family=family.name, username="slow", display_name="Before")
        )
    )
    cid = uuid.UUID(c.name.split("/")[1])
    # A real slow step: another session holds the customer's row lock, so the
    # update's SELECT ... FOR UPDATE waits in PostgreSQL.
    blocker = await ctx.pool.acquire()
    observer = await ctx.pool.acquire()
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT 1 FROM customers WHERE id = $1 FOR UPDATE", cid)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await api.UpdateCustomer(
                pb.UpdateCustomerRequest(
                    customer=pb.Customer(name=c.name, display_name="After"),
                    update_mask=FieldMask(paths=["display_name"]),
                ),
                timeout=1.0,
            )
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        async def nobody_waits() -> bool:
            return await observer.fetchval(WAITING_ON_LOCKS) == 0

        # The server cancelled the query: nothing is left queued behind the lock.
        assert await poll(nobody_waits), "the update kept waiting after the deadline"
        await tx.rollback()
    finally:
        await ctx.pool.release(blocker)
        await ctx.pool.release(observer)
    # And the cancelled update did not land once the lock was gone.
    await asyncio.sleep(0.3)
    got = await api.GetCustomer(pb.GetCustomerRequest(name=c.name))
    assert got.display_name == "Before"


async def test_an_oversized_request_is_resource_exhausted(ctx: Context) -> None:
    limit = 64 * 1024
    small = dataclasses.replace(
        ctx, settings=dataclasses.replace(ctx.settings, grpc_max_message_bytes=limit)
    )
    server = build_server(small, 0, host="127.0.0.1", security=NO_AUTH)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = Stub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CreateFamily(
                    pb.CreateFamilyRequest(family=pb.Family(display_name="x" * (limit + 1)))
                )
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            # Under the limit the request reaches validation, which names the field.
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CreateFamily(
                    pb.CreateFamilyRequest(family=pb.Family(display_name="x" * (limit // 2)))
                )
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert (caught.value.details() or "").startswith("family.display_name:")
    finally:
        await server.stop(0)
