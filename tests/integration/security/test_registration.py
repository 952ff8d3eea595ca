"""Every service's handlers are wrapped when they are registered (edge.py), in both modes."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from tests.integration.security.conftest import Serve
from tests.support.open_api import NO_AUTH


def _checks() -> float:
    value = REGISTRY.get_sample_value(
        "customer_grpc_requests_total", {"method": "Check", "code": "OK"}
    )
    return value or 0.0


@pytest.mark.parametrize("mode", ["none", "jwt"])
async def test_a_method_nobody_serves_is_unimplemented_and_health_is_counted(
    serve: Serve, mode: str
) -> None:
    running = await serve(NO_AUTH if mode == "none" else None)
    channel = grpc.aio.insecure_channel(running.target)
    running.channels.append(channel)
    for path in ("/customer.v1.CustomerService/NoSuchMethod", "/no.such.Service/Call"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(path)(b"", timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED, path
    before = _checks()
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=""), timeout=10
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert _checks() == before + 1
