"""Fixtures for the streaming RPCs: customers written with SQL, API servers in-process
and as separate processes, and helpers that make statistics and activity change."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from customer_api.server import ApiServer, build_server
from customer_core import notices
from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2_grpc
from customer_launcher.devstack import free_port
from tests.support.open_api import NO_AUTH

Stub = customer_pb2_grpc.CustomerServiceStub


@dataclass(frozen=True)
class Member:
    id: uuid.UUID
    family_id: uuid.UUID

    @property
    def name(self) -> str:
        return f"customers/{self.id}"

    @property
    def family(self) -> str:
        return f"families/{self.family_id}"


async def add_family(ctx: Context, members: int = 1) -> list[Member]:
    """A family and its members, written with SQL, each with a loyalty account."""
    fid = uuid.uuid4()
    out = []
    async with ctx.pool.acquire() as conn:
        await conn.execute("INSERT INTO families (id, display_name) VALUES ($1, 'Fam')", fid)
        for _ in range(members):
            cid = uuid.uuid4()
            await conn.execute(
                "INSERT INTO customers (id, family_id, username, display_name) "
                "VALUES ($1, $2, $3, 'Someone')",
                cid,
                fid,
                f"u{cid.hex[:12]}",
            )
            await conn.execute(
                "INSERT INTO loyalty_accounts (id, customer_id) VALUES ($1, $2)", uuid.uuid4(), cid
            )
            out.append(Member(cid, fid))
    return out


async def set_orders(ctx: Context, m: Member, count: int, *, publish: bool = True) -> None:
    """Write the customer's order count as the consumer would, then publish its notice."""
    async with ctx.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO order_stats (customer_id, order_count) VALUES ($1, $2) "
            "ON CONFLICT (customer_id) DO UPDATE SET order_count = $2, update_time = now()",
            m.id,
            count,
        )
    if publish:
        await notices.publish(
            ctx.valkey, [notices.Notice(m.id, m.family_id, frozenset({notices.STATS}))]
        )


async def add_activity(ctx: Context, m: Member, n: int = 1, kind: str = "points_earned") -> None:
    """`n` activities for the customer, published as the consumer does after a commit."""
    acts = [
        notices.Activity(kind=kind, customer_id=m.id, family_id=m.family_id, points=i + 1)
        for i in range(n)
    ]
    await notices.publish(ctx.valkey, [], acts)


async def wait_until(check: object, within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def server(ctx: Context) -> AsyncIterator[ApiServer]:
    """An in-process API server, so tests can look at its hub."""
    api = build_server(ctx, 0, host="127.0.0.1", security=NO_AUTH)
    await api.start()
    try:
        yield api
    finally:
        await api.stop(0)


@pytest.fixture
async def stub(server: ApiServer) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield Stub(channel)


def _start_api(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    child_env = {
        **env,
        "GRPC_PORT": str(port),
        "METRICS_PORT": "0",
        "LOG_LEVEL": "WARNING",
        "AUTH_MODE": "none",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "customer_launcher", "api"],
        env=child_env,
        stdin=subprocess.DEVNULL,
    )


async def _wait_serving(port: int, proc: subprocess.Popen[bytes], within: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + within
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"api process exited with {proc.returncode}")
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("api process did not start serving in time")
            await asyncio.sleep(0.2)


@dataclass
class ApiProcess:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def stream_env(env: dict[str, str]) -> dict[str, str]:
    """The child processes' environment: small queues so a stalled reader overflows fast."""
    return {**env, "STREAM_QUEUE_LIMIT": "64", "STATS_COALESCE_MS": "150"}


@pytest.fixture
async def two_apis(ctx: Context, stream_env: dict[str, str]) -> AsyncIterator[list[ApiProcess]]:
    """Two `customer-service api` processes on the test's database and one Valkey."""
    apis = []
    try:
        for _ in range(2):
            port = free_port()
            apis.append(ApiProcess(port, _start_api(stream_env, port)))
        for a in apis:
            await _wait_serving(a.port, a.proc)
        yield apis
    finally:
        for a in apis:
            a.terminate()


@pytest.fixture
def clean_env() -> Iterator[None]:
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
