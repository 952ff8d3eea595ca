"""Limits: one rate bucket per caller shared by every replica, default deadlines,
and the largest request accepted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import grpc
import pytest

from customer_api.edge import Edge
from customer_api.security.interceptor import SecurityInterceptor
from customer_api.security.settings import SecuritySettings
from customer_api.security.tokens import OPERATOR, ORDER_SERVICE, build_authenticator
from customer_api.servicer import CustomerServicer
from customer_core.config import Settings
from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.integration.security.conftest import Family, Serve, Signer


@pytest.fixture
async def other_ctx(settings: Settings) -> AsyncIterator[Context]:
    """A second replica's context (its own pools). Requested before `serve`, so it
    is closed after the server using it has stopped: closed first, that server's
    notice listener retried on the closed client, and the teardown once hit the
    300 s timeout in CI."""
    ctx = await Context.create(settings)
    try:
        yield ctx
    finally:
        await ctx.aclose()


async def test_the_rate_limit_holds_across_two_api_servers(
    other_ctx: Context,
    serve: Serve,
    jwt_security: SecuritySettings,
    signer: Signer,
    families: tuple[Family, Family],
) -> None:
    # A refill of one token per 1000 s: only the burst is spendable during the test,
    # however slow the machine is.
    limited = replace(jwt_security, rate_per_second=0.001, rate_burst=4)
    a = await serve(limited)
    b = await serve(limited, other_ctx)
    token = signer.token(OPERATOR, "ops-rate")
    stubs = [a.stub(token), b.stub(token)]
    request = pb.GetFamilyRequest(name=families[0].name)
    ok, refused_by = 0, set()
    for i in range(10):
        try:
            await stubs[i % 2].GetFamily(request)
            ok += 1
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            hint = dict(exc.trailing_metadata() or ())
            assert int(hint["retry-after-ms"]) > 0
            refused_by.add(i % 2)
    assert ok == 4
    assert refused_by == {0, 1}
    # Another caller has a bucket of its own.
    fresh = a.stub(signer.token(OPERATOR, "ops-other"))
    assert (await fresh.GetFamily(request)).name == families[0].name


async def test_order_service_callers_get_their_own_higher_rate(
    serve: Serve, jwt_security: SecuritySettings, signer: Signer, families: tuple[Family, Family]
) -> None:
    limits = replace(
        jwt_security, rate_per_second=0.001, rate_burst=1, order_service_rate_per_second=50
    )
    running = await serve(limits)
    stub = running.stub(signer.token(ORDER_SERVICE, "orders"))
    request = pb.GetLoyaltyAccountRequest(customer=families[0].member(0))
    codes = []
    for _ in range(5):
        try:
            await stub.GetLoyaltyAccount(request)
            codes.append(grpc.StatusCode.OK)
        except grpc.aio.AioRpcError as exc:
            codes.append(exc.code())
    assert grpc.StatusCode.RESOURCE_EXHAUSTED not in codes


class SlowServicer(CustomerServicer):
    cancelled = 0

    async def ValidateCustomer(  # type: ignore[override]
        self, request: pb.ValidateCustomerRequest, context: Any
    ) -> pb.ValidateCustomerResponse:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            SlowServicer.cancelled += 1
            raise
        return pb.ValidateCustomerResponse(valid=True)


@pytest.fixture
async def slow_server(ctx: Context, jwt_security: SecuritySettings) -> AsyncIterator[str]:
    security = replace(jwt_security, default_deadline_seconds=0.5)
    interceptor = SecurityInterceptor(ctx, security, build_authenticator("jwt", None, security.jwt))
    server = grpc.aio.server(interceptors=[interceptor])
    customer_pb2_grpc.add_CustomerServiceServicer_to_server(
        SlowServicer(ctx), Edge().registrar(server)
    )  # type: ignore[arg-type]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def test_a_call_without_a_deadline_gets_the_default_one(
    slow_server: str, signer: Signer
) -> None:
    before = SlowServicer.cancelled
    async with grpc.aio.insecure_channel(slow_server) as channel:
        stub = customer_pb2_grpc.CustomerServiceStub(channel)
        metadata = (("authorization", f"Bearer {signer.token(ORDER_SERVICE, 'orders')}"),)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async with asyncio.timeout(50):  # a hang fails here, well before the 60 s sleep
                await stub.ValidateCustomer(
                    pb.ValidateCustomerRequest(customer="customers/x"), metadata=metadata
                )
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The handler's work was cancelled, not left running.
    assert SlowServicer.cancelled == before + 1


async def test_a_request_over_the_receive_limit_is_refused(
    serve: Serve, jwt_security: SecuritySettings, signer: Signer
) -> None:
    running = await serve(replace(jwt_security, max_receive_bytes=2048))
    stub = running.stub(signer.token(OPERATOR))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetCustomer(pb.GetCustomerRequest(username="u" * 4096))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_failed_authentications_are_limited_per_peer_before_any_check(
    serve: Serve, signer: Signer, jwt_security: SecuritySettings, families: tuple[Family, Family]
) -> None:
    """One bad attempt allowed, then the peer's calls that would cost a check
    (a token never verified, or none) wait; a token verified before still works."""
    running = await serve(replace(jwt_security, unauthenticated_rate_per_second=0.01))
    request = pb.GetFamilyRequest(name=families[0].name)
    known = running.stub(signer.token(OPERATOR, "ops-1"))
    assert (await known.GetFamily(request)).name == families[0].name

    async def code_of(stub: Any) -> tuple[grpc.StatusCode, str | None]:
        try:
            await stub.GetFamily(request)
        except grpc.aio.AioRpcError as exc:
            return exc.code(), dict(exc.trailing_metadata() or ()).get("retry-after-ms")
        return grpc.StatusCode.OK, None

    forged = running.stub("not-a-jwt")
    assert (await code_of(forged))[0] == grpc.StatusCode.UNAUTHENTICATED
    for stub in (forged, running.stub(None), running.stub(signer.token(OPERATOR, "ops-2"))):
        code, retry = await code_of(stub)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert retry is not None and int(retry) > 0
    assert (await known.GetFamily(request)).name == families[0].name
