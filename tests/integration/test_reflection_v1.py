"""Server reflection as `grpc.reflection.v1`, which current clients ask for first.

grpcurl, Postman and grpc-java's newer clients try v1 and fall back to v1alpha
only on UNIMPLEMENTED; a client that speaks only v1 saw no service at all.
The two versions are the same messages under another package, so the
v1alpha classes encode exactly what a v1 client sends and reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha.reflection_pb2 import ServerReflectionRequest as Request
from grpc_reflection.v1alpha.reflection_pb2 import ServerReflectionResponse as Response

from customer_api.server import build_server
from customer_core.context import Context
from tests.support.open_api import NO_AUTH

V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


@pytest.fixture
async def channel(ctx: Context) -> AsyncIterator[grpc.aio.Channel]:
    server = build_server(ctx, 0, host="127.0.0.1", security=NO_AUTH)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield channel
    finally:
        await server.stop(0)


async def _ask(channel: grpc.aio.Channel, *requests: Request) -> list[Response]:
    call = channel.stream_stream(
        V1, request_serializer=Request.SerializeToString, response_deserializer=Response.FromString
    )(iter(requests), timeout=30)
    return [reply async for reply in call]


def _files(reply: Response) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in reply.file_descriptor_response.file_descriptor_proto
    ]
    return {f.name: f for f in files}


async def test_v1_lists_every_service(channel: grpc.aio.Channel) -> None:
    (reply,) = await _ask(channel, Request(list_services=""))
    names = {s.name for s in reply.list_services_response.service}
    assert {
        "customer.v1.CustomerService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names


async def test_v1_describes_our_service(channel: grpc.aio.Channel) -> None:
    (reply,) = await _ask(channel, Request(file_containing_symbol="customer.v1.CustomerService"))
    services = {s.name for f in _files(reply).values() for s in f.service}
    assert "CustomerService" in services


async def test_v1_describes_itself_under_its_own_package(channel: grpc.aio.Channel) -> None:
    # A client resolving what `list` showed it must find the v1 types, not v1alpha's.
    symbol = "grpc.reflection.v1.ServerReflection"
    (reply,) = await _ask(channel, Request(file_containing_symbol=symbol))
    (file,) = _files(reply).values()
    assert file.package == "grpc.reflection.v1"
    (method,) = file.service[0].method
    assert method.input_type == ".grpc.reflection.v1.ServerReflectionRequest"
    assert method.output_type == ".grpc.reflection.v1.ServerReflectionResponse"
    typed = [f.type_name for m in file.message_type for f in m.field if f.type_name]
    assert typed and all(t.startswith(".grpc.reflection.v1.") for t in typed), typed


async def test_v1_answers_an_unknown_symbol_with_not_found(channel: grpc.aio.Channel) -> None:
    (reply,) = await _ask(channel, Request(file_containing_symbol="no.such.Service"))
    assert reply.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
