"""The server itself: health, reflection, unbuilt RPCs, graceful shutdown."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY

from customer_api import server as server_module
from customer_api.server import build_server
from customer_core.config import Settings
from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.support.open_api import NO_AUTH


async def test_health_check_reports_each_dependency(
    api: customer_pb2_grpc.CustomerServiceStub,
) -> None:
    reply = await api.HealthCheck(pb.HealthCheckRequest())
    assert reply.status == pb.HealthCheckResponse.SERVING
    assert reply.version
    assert {d.name: d.healthy for d in reply.dependencies} == {"postgres": True, "valkey": True}


async def test_reflection_lists_the_services(ctx: Context) -> None:
    server = build_server(ctx, 0, host="127.0.0.1", security=NO_AUTH)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            call = stub.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
            names = set()
            async for reply in call:
                names |= {s.name for s in reply.list_services_response.service}
    finally:
        await server.stop(0)
    assert {"customer.v1.CustomerService", "grpc.health.v1.Health"} <= names


async def test_sigterm_turns_health_not_serving_and_lets_calls_finish(ctx: Context) -> None:
    server = build_server(ctx, 0, host="127.0.0.1", security=NO_AUTH)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    health = health_pb2_grpc.HealthStub(channel)
    stub = customer_pb2_grpc.CustomerServiceStub(channel)
    before = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert before.status == health_pb2.HealthCheckResponse.SERVING
    # Watch sees the flip to NOT_SERVING that load balancers drain on.
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
    in_flight = asyncio.ensure_future(stub.HealthCheck(pb.HealthCheckRequest()))
    # Stop once the call has reached the server (or already finished): a call the
    # server has not seen yet when it stops is refused, as it should be.
    for _ in range(2000):
        seen = REGISTRY.get_sample_value("customer_grpc_in_flight", {"method": "HealthCheck"})
        if in_flight.done() or (seen or 0) > 0:
            break
        await asyncio.sleep(0.001)
    stopping = asyncio.ensure_future(server.stop(5))
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
    watch.cancel()
    reply = await in_flight
    assert reply.version
    await stopping
    await channel.close()


async def test_grpc_health_service_is_served(ctx: Context) -> None:
    server = build_server(ctx, 0, host="127.0.0.1", security=NO_AUTH)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(
                health_pb2.HealthCheckRequest(service="customer.v1.CustomerService")
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await health.Check(health_pb2.HealthCheckRequest(service="nope"))
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await server.stop(0)


async def test_a_server_stops_after_its_valkey_and_database_clients_were_closed(
    settings: Settings,
) -> None:
    """Shutdown in the wrong order (the context closed before the server) still ends:
    the notice listener must not retry forever on a client that was closed."""
    ctx = await Context.create(settings)
    server = build_server(ctx, 0, host="127.0.0.1", security=NO_AUTH)
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = customer_pb2_grpc.CustomerServiceStub(channel)
        await stub.HealthCheck(pb.HealthCheckRequest(), timeout=20)
    await ctx.aclose()
    await asyncio.sleep(0.5)  # the listener notices its connection is gone
    await asyncio.wait_for(server.stop(0), 15)


async def test_a_client_keeping_its_idle_connection_alive_is_not_cut_off(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A client of another stack pings its idle connections to keep them through
    # proxies (grpc-go's keepalive with PermitWithoutStream, Envoy), at the interval
    # the server allows (shortened here, so the test takes seconds, not minutes).
    monkeypatch.setattr(server_module, "MIN_PING_INTERVAL_MS", 1000)
    server = build_server(ctx, 0, host="127.0.0.1", security=NO_AUTH)
    await server.start()
    options = [
        ("grpc.keepalive_time_ms", 1000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}", options=options) as ch:
            health = health_pb2_grpc.HealthStub(ch)
            await health.Check(health_pb2.HealthCheckRequest(service=""))
            states = set()
            for _ in range(60):  # 6 s idle: about six pings
                states.add(ch.get_state())
                await asyncio.sleep(0.1)
            # Cut off, the channel goes IDLE (GOAWAY "too_many_pings") and the
            # client's next call pays a reconnect.
            assert states == {grpc.ChannelConnectivity.READY}
            await health.Check(health_pb2.HealthCheckRequest(service=""))
    finally:
        await server.stop(0)
