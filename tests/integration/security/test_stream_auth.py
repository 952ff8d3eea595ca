"""Streams stay authorised: an open stream ends with UNAUTHENTICATED when its
token expires (the client reconnects with a fresh token and resumes from its
cursor), and each Subscribe inside ActivityFeed is charged to the caller's
rate limit. Real server, real feed, real Valkey bucket."""

from __future__ import annotations

import time
from dataclasses import replace

import grpc
import pytest

from customer_api.security.settings import SecuritySettings
from customer_api.security.tokens import APP, OPERATOR
from customer_core.pb.customer.v1 import customer_pb2 as pb
from tests.integration.security.conftest import (
    ADULT_I,
    HOUSEHOLD,
    Family,
    Serve,
    Signer,
    make_family,
)

LIFETIME = 3  # seconds a short-lived token holds


def _no_leeway(settings: SecuritySettings) -> SecuritySettings:
    assert settings.jwt is not None
    return replace(settings, jwt=replace(settings.jwt, leeway_seconds=0))


async def _ends_with(call: grpc.aio.Call) -> grpc.StatusCode:
    """Read until the stream ends; the call's own timeout bounds the wait."""
    try:
        while True:
            got = await call.read()  # type: ignore[attr-defined]
            if got is grpc.aio.EOF:
                code: grpc.StatusCode = await call.code()
                return code
    except grpc.aio.AioRpcError as exc:
        return exc.code()


@pytest.mark.parametrize("kind", [OPERATOR, APP])
async def test_an_expired_token_ends_an_open_stats_watch(
    serve: Serve, signer: Signer, jwt_security: SecuritySettings, ctx: object, kind: str
) -> None:
    household = await make_family(ctx, "Watch", roles=HOUSEHOLD)  # type: ignore[arg-type]
    running = await serve(_no_leeway(jwt_security))
    exp = int(time.time()) + LIFETIME
    sub = household.member(ADULT_I) if kind == APP else "ops-1"
    token = signer.token(kind, sub, household.id if kind == APP else None, exp=exp)
    stub = running.stub(token)
    call = stub.WatchCustomerStats(
        pb.WatchCustomerStatsRequest(customer=household.member(ADULT_I)), timeout=60
    )
    first = await call.read()
    assert first is not grpc.aio.EOF  # open and serving while the token holds
    assert await _ends_with(call) == grpc.StatusCode.UNAUTHENTICATED
    details = await call.details()
    assert "expired" in details


async def test_an_expired_token_ends_an_open_activity_feed(
    serve: Serve, signer: Signer, jwt_security: SecuritySettings, families: tuple[Family, Family]
) -> None:
    own = families[0]
    running = await serve(_no_leeway(jwt_security))
    stub = running.stub(signer.token(OPERATOR, "ops-1", exp=int(time.time()) + LIFETIME))
    call = stub.ActivityFeed(timeout=60)
    await call.write(
        pb.ActivityFeedRequest(subscribe=pb.Subscribe(subscription_id="s1", family=own.name))
    )
    assert (await call.read()).ack.subscribed
    assert await _ends_with(call) == grpc.StatusCode.UNAUTHENTICATED


async def test_each_subscribe_is_charged_to_the_callers_rate_limit(
    serve: Serve, signer: Signer, jwt_security: SecuritySettings, families: tuple[Family, Family]
) -> None:
    own = families[0]
    # Five calls' worth, refilled far slower than the test runs.
    limited = replace(jwt_security, rate_per_second=0.001, rate_burst=5)
    running = await serve(limited)
    stub = running.stub(signer.token(OPERATOR, "ops-1"))
    call = stub.ActivityFeed(timeout=60)  # the open costs one
    acked = 0
    for i in range(10):
        request = pb.Subscribe(subscription_id=f"s{i}", family=own.name)
        await call.write(pb.ActivityFeedRequest(subscribe=request))
        try:
            got = await call.read()
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            retry = dict(exc.trailing_metadata() or ()).get("retry-after-ms")
            assert retry is not None and int(retry) > 0
            break
        assert got.ack.subscribed
        acked += 1
    else:
        pytest.fail("ten Subscribes on a five-call budget were all served")
    assert acked == 4  # the open took one of the five
    # And the stream did not buy the caller anything: its next call is refused too.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetFamily(pb.GetFamilyRequest(name=own.name))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
