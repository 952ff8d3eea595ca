"""Bytes that do not parse as the request are INVALID_ARGUMENT on every RPC, in both modes.

With authentication the outermost interceptor answers them; without it the
edge interceptor does (one wrapper on the hot path instead of two). Either
way the client is told what is wrong, never UNKNOWN with a parser's traceback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from prometheus_client import REGISTRY

from customer_api.malformed import MESSAGE
from customer_core.pb.customer.v1 import customer_pb2 as pb
from tests.integration.security.calls import METHODS
from tests.integration.security.conftest import Serve, Signer
from tests.support.open_api import NO_AUTH

# Field 1, length-delimited, claiming 127 bytes that never come: no message parses it.
TRUNCATED = b"\x0a\x7f"


async def _one(blob: bytes) -> AsyncIterator[bytes]:
    yield blob


async def _status(
    channel: grpc.aio.Channel, method: str, md: tuple[tuple[str, str], ...]
) -> tuple[grpc.StatusCode, str]:
    desc = METHODS[method]
    path = f"/customer.v1.CustomerService/{method}"
    try:
        if desc.client_streaming and desc.server_streaming:
            async for _ in channel.stream_stream(path)(_one(TRUNCATED), metadata=md, timeout=20):
                pass
        elif desc.client_streaming:
            await channel.stream_unary(path)(_one(TRUNCATED), metadata=md, timeout=20)
        elif desc.server_streaming:
            async for _ in channel.unary_stream(path)(TRUNCATED, metadata=md, timeout=20):
                pass
        else:
            await channel.unary_unary(path)(TRUNCATED, metadata=md, timeout=20)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


@pytest.mark.parametrize("mode", ["jwt", "none"])
async def test_undecodable_bytes_are_invalid_argument_on_every_rpc(
    serve: Serve, signer: Signer, mode: str
) -> None:
    running = await serve(NO_AUTH if mode == "none" else None)
    channel = grpc.aio.insecure_channel(running.target)
    running.channels.append(channel)
    md = (("authorization", f"Bearer {signer.token('operator', 'malformed')}"),)
    wrong = {}
    for method in sorted(METHODS):
        code, details = await _status(channel, method, md)
        if (code, details) != (grpc.StatusCode.INVALID_ARGUMENT, MESSAGE):
            wrong[method] = (code.name, details)
    assert wrong == {}
    # And it keeps serving well-formed calls.
    health = channel.unary_unary(
        "/customer.v1.CustomerService/HealthCheck",
        request_serializer=pb.HealthCheckRequest.SerializeToString,
        response_deserializer=pb.HealthCheckResponse.FromString,
    )
    await health(pb.HealthCheckRequest(), metadata=md, timeout=20)


def _invalid_argument_count(method: str) -> float:
    labels = {"method": method, "code": "INVALID_ARGUMENT"}
    return REGISTRY.get_sample_value("customer_grpc_requests_total", labels) or 0.0


@pytest.mark.parametrize("mode", ["jwt", "none"])
async def test_undecodable_requests_are_counted_as_invalid_argument(
    serve: Serve, signer: Signer, mode: str
) -> None:
    """The dashboards' client-error rate sees a client sending bytes that do not parse."""
    running = await serve(NO_AUTH if mode == "none" else None)
    channel = grpc.aio.insecure_channel(running.target)
    running.channels.append(channel)
    md = (("authorization", f"Bearer {signer.token('operator', 'malformed')}"),)
    uncounted = {}
    for method in sorted(METHODS):
        before = _invalid_argument_count(method)
        await _status(channel, method, md)
        if _invalid_argument_count(method) != before + 1:
            uncounted[method] = _invalid_argument_count(method) - before
    assert uncounted == {}
