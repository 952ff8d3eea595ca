"""Inside streams: each Subscribe of an app caller is checked against its family,
and a caller holds at most MAX_STREAMS_PER_CALLER open streams."""

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
from customer_api.security.tokens import APP, OPERATOR, Principal, build_authenticator
from customer_api.servicer import CustomerServicer
from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.integration.security.conftest import Family, Serve, Signer


class EchoFeed(CustomerServicer):
    """The real servicer, with a minimal ActivityFeed that acknowledges what it reads,
    so the interceptor's per-message check is tested whatever the real feed does."""

    async def ActivityFeed(  # type: ignore[override]
        self, request_iterator: AsyncIterator[pb.ActivityFeedRequest], context: Any
    ) -> AsyncIterator[pb.ActivityFeedResponse]:
        async for request in request_iterator:
            if request.WhichOneof("action") == "subscribe":
                ack = pb.SubscriptionAck(subscription_id=request.subscribe.subscription_id)
                ack.subscribed = True
                yield pb.ActivityFeedResponse(ack=ack)
            elif request.WhichOneof("action") == "ping":
                yield pb.ActivityFeedResponse(pong=pb.Pong(nonce=request.ping.nonce))


@pytest.fixture
async def feed_server(
    ctx: Context, jwt_security: SecuritySettings
) -> AsyncIterator[tuple[str, SecurityInterceptor]]:
    security = replace(jwt_security, max_streams_per_caller=2)
    authenticator = build_authenticator("jwt", None, security.jwt)
    interceptor = SecurityInterceptor(ctx, security, authenticator)
    server = grpc.aio.server(interceptors=[interceptor])
    customer_pb2_grpc.add_CustomerServiceServicer_to_server(EchoFeed(ctx), Edge().registrar(server))  # type: ignore[arg-type]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", interceptor
    finally:
        await server.stop(0)


def _subscribe(sid: str, *, customer: str = "", family: str = "") -> pb.ActivityFeedRequest:
    sub = pb.Subscribe(subscription_id=sid)
    if customer:
        sub.customer = customer
    if family:
        sub.family = family
    return pb.ActivityFeedRequest(subscribe=sub)


def _auth(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


async def test_a_subscribe_to_another_family_ends_the_feed_with_permission_denied(
    feed_server: tuple[str, SecurityInterceptor],
    signer: Signer,
    families: tuple[Family, Family],
) -> None:
    own, other = families
    target, _ = feed_server
    async with grpc.aio.insecure_channel(target) as channel:
        stub = customer_pb2_grpc.CustomerServiceStub(channel)
        call = stub.ActivityFeed(metadata=_auth(signer.token(APP, "app-1", own.id)), timeout=30)
        await call.write(_subscribe("mine", family=own.name))
        assert (await call.read()).ack.subscription_id == "mine"
        await call.write(_subscribe("member", customer=own.member(1)))
        assert (await call.read()).ack.subscription_id == "member"
        await call.write(_subscribe("theirs", customer=other.member(0)))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("kind", ["family", "customer", "none", "unknown customer"])
async def test_an_app_cannot_subscribe_outside_its_family(
    feed_server: tuple[str, SecurityInterceptor],
    signer: Signer,
    families: tuple[Family, Family],
    kind: str,
) -> None:
    own, other = families
    request = {
        "family": _subscribe("x", family=other.name),
        "customer": _subscribe("x", customer=other.member(1)),
        "none": _subscribe("x"),
        "unknown customer": _subscribe(
            "x", customer="customers/7b0c2a52-3f4e-4c55-9a55-2b1f0c1d9e77"
        ),
    }[kind]
    async with grpc.aio.insecure_channel(feed_server[0]) as channel:
        stub = customer_pb2_grpc.CustomerServiceStub(channel)
        call = stub.ActivityFeed(metadata=_auth(signer.token(APP, "app-1", own.id)), timeout=30)
        await call.write(request)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_an_operator_may_subscribe_to_any_family(
    feed_server: tuple[str, SecurityInterceptor], signer: Signer, families: tuple[Family, Family]
) -> None:
    async with grpc.aio.insecure_channel(feed_server[0]) as channel:
        stub = customer_pb2_grpc.CustomerServiceStub(channel)
        call = stub.ActivityFeed(metadata=_auth(signer.token(OPERATOR, "ops")), timeout=30)
        for family in families:
            await call.write(_subscribe(family.name, family=family.name))
            assert (await call.read()).ack.subscribed
        await call.done_writing()


async def test_open_streams_are_capped_per_caller(
    feed_server: tuple[str, SecurityInterceptor], signer: Signer, families: tuple[Family, Family]
) -> None:
    own, other = families
    target, interceptor = feed_server
    async with grpc.aio.insecure_channel(target) as channel:
        stub = customer_pb2_grpc.CustomerServiceStub(channel)
        mine = _auth(signer.token(APP, "app-1", own.id))

        async def open_feed(metadata: Any, family: Family) -> Any:
            call = stub.ActivityFeed(metadata=metadata, timeout=60)
            await call.write(_subscribe("s", family=family.name))
            return call, await call.read()

        first, _ = await open_feed(mine, own)
        second, _ = await open_feed(mine, own)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await open_feed(mine, own)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Another caller (the other family's app) has slots of its own.
        theirs, ack = await open_feed(_auth(signer.token(APP, "app-1", other.id)), other)
        assert ack.ack.subscribed
        # Closing a stream frees its slot.
        await first.done_writing()
        assert await first.read() == grpc.aio.EOF
        caller = Principal(APP, "app-1", own.id)
        for _ in range(100):
            if interceptor.streams.open_count(caller) < 2:
                break
            await asyncio.sleep(0.05)
        third, ack = await open_feed(mine, own)
        assert ack.ack.subscribed
        for call in (second, third, theirs):
            call.cancel()


async def test_the_real_feed_refuses_another_familys_subscription(
    serve: Serve, signer: Signer, families: tuple[Family, Family]
) -> None:
    own, other = families
    running = await serve()
    async with grpc.aio.insecure_channel(running.target) as channel:
        stub = customer_pb2_grpc.CustomerServiceStub(channel)
        call = stub.ActivityFeed(metadata=_auth(signer.token(APP, "app-1", own.id)), timeout=30)
        await call.write(_subscribe("mine", family=own.name))
        first = await call.read()
        assert first.ack.subscription_id == "mine" and first.ack.subscribed
        await call.write(_subscribe("theirs", family=other.name))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _read_until_refused(call)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def _read_until_refused(call: Any) -> None:
    while True:  # events for the own family may come first
        got = await call.read()
        assert got is not grpc.aio.EOF
        assert got.ack.subscription_id != "theirs"
