"""Bearer tokens: a valid JWT gets in; anything else is UNAUTHENTICATED, saying nothing more."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from customer_api.security.interceptor import MAX_TOKEN_CHARS
from customer_core.pb.customer.v1 import customer_pb2 as pb
from tests.integration.security.conftest import AUDIENCE, ISSUER, KID, Family, Serve, Signer


def _claims() -> dict[str, object]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "kind": "operator", "exp": now + 60}


def _forged(**claims: object) -> str:
    other = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "kind": "operator", "exp": now + 60}
    body.update(claims)
    return jwt.encode(body, other, algorithm="ES256", headers={"kid": KID})


async def test_operator_token_is_accepted(
    serve: Serve, signer: Signer, families: tuple[Family, Family]
) -> None:
    running = await serve()
    stub = running.stub(signer.token("operator", "ops-1"))
    family = await stub.GetFamily(pb.GetFamilyRequest(name=families[0].name))
    assert family.name == families[0].name


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda s: None, id="no token"),
        pytest.param(lambda s: "not-a-jwt", id="garbage"),
        pytest.param(lambda s: _forged(), id="signed by another key"),
        pytest.param(lambda s: s.token("operator", exp=int(time.time()) - 60), id="expired"),
        pytest.param(lambda s: s.token("operator", nbf=int(time.time()) + 600), id="not yet valid"),
        pytest.param(lambda s: s.token("operator", aud="another-service"), id="wrong audience"),
        pytest.param(lambda s: s.token("operator", iss="https://evil.example"), id="wrong issuer"),
        pytest.param(lambda s: s.token("superuser"), id="unknown kind"),
        pytest.param(lambda s: s.token("app"), id="app without family_id"),
        pytest.param(lambda s: jwt.encode(_claims(), key=None, algorithm="none"), id="alg none"),
        pytest.param(
            lambda s: jwt.encode(
                _claims(), key="a-shared-secret-of-32-bytes-long!", algorithm="HS256"
            ),
            id="hmac",
        ),
    ],
)
async def test_bad_credentials_are_unauthenticated_without_detail(
    serve: Serve, signer: Signer, families: tuple[Family, Family], make_token: object
) -> None:
    running = await serve()
    stub = running.stub(make_token(signer))  # type: ignore[operator]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetFamily(pb.GetFamilyRequest(name=families[0].name))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # The same words whatever went wrong: no hint for an attacker.
    assert caught.value.details() == "unauthenticated"


async def test_expired_within_leeway_is_accepted(
    serve: Serve, signer: Signer, families: tuple[Family, Family]
) -> None:
    running = await serve()
    stub = running.stub(signer.token("operator", exp=int(time.time()) - 2))
    assert (await stub.GetFamily(pb.GetFamilyRequest(name=families[0].name))).name


async def test_a_non_bearer_scheme_is_refused(serve: Serve, signer: Signer) -> None:
    running = await serve()
    stub = running.stub()
    token = signer.token("operator")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListRewards(
            pb.ListRewardsRequest(), metadata=(("authorization", f"Basic {token}"),)
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_health_and_reflection_stay_open(serve: Serve) -> None:
    running = await serve()
    stub = running.stub()  # no token
    reply = await stub.HealthCheck(pb.HealthCheckRequest())
    assert reply.status == pb.HealthCheckResponse.SERVING
    channel = grpc.aio.insecure_channel(running.target)
    running.channels.append(channel)
    health = health_pb2_grpc.HealthStub(channel)
    checked = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=30)
    assert checked.status == health_pb2.HealthCheckResponse.SERVING
    # Both reflection versions answer a caller without a token (grpcurl, k6).
    for version in ("v1", "v1alpha"):
        call = channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=30)
        names = {s.name async for reply in call for s in reply.list_services_response.service}
        assert "customer.v1.CustomerService" in names, version


async def _outcomes(stub: Any, name: str, calls: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    for _ in range(calls):
        try:
            await stub.GetFamily(pb.GetFamilyRequest(name=name))
            seen["OK"] += 1
        except grpc.aio.AioRpcError as exc:
            seen[exc.code().name] += 1
    return seen


async def test_a_long_token_is_read_on_every_call(
    serve: Serve, signer: Signer, families: tuple[Family, Family]
) -> None:
    # Identity providers put groups and roles into tokens: several KiB are real.
    # gRPC's default metadata limits refuse a share of calls at random above 8 KiB
    # of metadata, below the token length we accept (interceptor.MAX_TOKEN_CHARS).
    token = signer.token("operator", "ops-1", groups="g" * 5_890)
    assert 7_900 < len(token) <= MAX_TOKEN_CHARS
    running = await serve()
    seen = await _outcomes(running.stub(token), families[0].name, 60)
    assert seen == Counter(OK=60)


async def test_a_token_over_the_limit_is_refused_every_time(
    serve: Serve, signer: Signer, families: tuple[Family, Family]
) -> None:
    running = await serve()
    longer = signer.token("operator", "ops-1", groups="g" * 7_000)
    assert len(longer) > MAX_TOKEN_CHARS
    seen = await _outcomes(running.stub(longer), families[0].name, 30)
    assert seen == Counter(UNAUTHENTICATED=30)
    # Beyond what the transport reads at all: refused by it, but also every time.
    huge = signer.token("operator", "ops-1", groups="g" * 20_000)
    seen = await _outcomes(running.stub(huge), families[0].name, 30)
    assert seen == Counter(RESOURCE_EXHAUSTED=30)
