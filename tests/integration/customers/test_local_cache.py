"""The in-process cache in front of Valkey: two Contexts are two api replicas.

A write anywhere (another replica, the consumer's generation bump, a flush)
evicts the entry everywhere through Valkey's client-side tracking; the writer's
own replica never serves its old value; while tracking is down nothing is
served locally, and nothing stored before survives a restart.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from prometheus_client import REGISTRY

from customer_api.server import build_server
from customer_core.cache_keys import generation_key
from customer_core.config import Settings, load_settings
from customer_core.context import Context
from customer_core.local_cache import LocalCache
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from customer_launcher.devstack import Valkey, free_port
from tests.integration.customers.conftest import new_customer
from tests.support.open_api import NO_AUTH

KIND = "probe"
# Invalidations are pushed within milliseconds; this only bounds a broken run.
WITHIN = 15.0


async def eventually(check: Callable[[], bool], what: str, within: float = WITHIN) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not within {within} s: {what}")
        await asyncio.sleep(0.005)


def local(ctx: Context) -> LocalCache:
    assert ctx.cache.local is not None and ctx.tracker is not None
    return ctx.cache.local


async def replica(settings: Settings) -> Context:
    r = await Context.create(settings, local_cache=True)
    await eventually(lambda: local(r).tracking, "the replica's tracking connection is up")
    return r


@pytest.fixture
async def replicas(ctx: Context) -> AsyncIterator[tuple[Context, Context]]:
    a, b = await replica(ctx.settings), await replica(ctx.settings)
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()


async def read(r: Context, cid: uuid.UUID, value: bytes) -> bytes | None:
    """What the replica's cache returns; on a miss it stores `value` as the database would."""
    raw, slot = await r.cache.get(KIND, cid)
    if raw is None:
        await r.cache.put(slot, value)
    return raw


async def settles(r: Context, cid: uuid.UUID, value: bytes) -> None:
    """The replica reads `value` (the database's) again, never the old one, from anywhere."""
    for _ in range(200):
        # The first look-ups may fail (pooled connections died with a server): then
        # the database answers and nothing is stored, and the next read tries again.
        got = await read(r, cid, value)
        assert got in (None, value), f"a stale {got!r} was served"
        if got == value:
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"{value!r} was never cached again")


def served(kind: str, result: str) -> float:
    """What /metrics says of the in-process cache's look-ups."""
    value = REGISTRY.get_sample_value(
        "customer_local_cache_requests_total", {"cache": kind, "result": result}
    )
    return value or 0.0


def hits(kind: str = KIND) -> float:
    return served(kind, "hit")


async def filled(r: Context, cid: uuid.UUID, value: bytes) -> None:
    """Fill the replica's local cache and check the next read is served from it."""
    await read(r, cid, value)
    before = hits()
    assert await read(r, cid, b"unused") == value
    assert hits() == before + 1


async def test_a_write_on_one_replica_evicts_the_entry_on_the_other(
    replicas: tuple[Context, Context],
) -> None:
    a, b = replicas
    cid = uuid.uuid4()
    await filled(a, cid, b"v1")
    await filled(b, cid, b"v1")
    # A's own invalidation message is late (its loop busy, its connection slow): A must
    # not need it. (Unpaused, it usually arrives before the reply to A's bump.)
    assert a.tracker is not None and a.tracker.transport is not None
    a.tracker.transport.pause_reading()
    await a.cache.invalidate(cid)
    assert local(a).get(KIND, cid) is None  # evicted before invalidate returned
    a.tracker.transport.resume_reading()
    await eventually(lambda: local(b).get(KIND, cid) is None, "B evicted on A's write")
    assert await read(b, cid, b"v2") is None  # a miss: B reads the database again
    assert await read(b, cid, b"unused") == b"v2"


async def test_a_generation_bump_outside_the_api_evicts_everywhere(
    ctx: Context, replicas: tuple[Context, Context]
) -> None:
    a, b = replicas
    cid, other = uuid.uuid4(), uuid.uuid4()
    for r in replicas:
        await filled(r, cid, b"v1")
        await filled(r, other, b"o1")
    # What the consumer's batch script does after its commit.
    await ctx.valkey.eval("return redis.call('INCR', KEYS[1])", 1, generation_key(cid))
    for r in replicas:
        await eventually(lambda r=r: local(r).get(KIND, cid) is None, "evicted by the bump")
        assert local(r).get(KIND, other) == b"o1"  # only that customer
    # A flush (a null invalidation) and a global bump each empty every replica.
    await ctx.valkey.flushdb()
    for r in replicas:
        await eventually(lambda r=r: len(local(r)) == 0, "emptied by FLUSHDB")
    await filled(a, other, b"o2")
    await ctx.cache.invalidate_all()
    await eventually(lambda: len(local(a)) == 0, "emptied by the global generation")
    assert b.tracker is not None and b.tracker.sessions == 1  # none of this dropped tracking


async def test_the_writer_never_serves_its_own_old_value_across_grpc(
    replicas: tuple[Context, Context],
) -> None:
    a, b = replicas
    servers = [build_server(r, 0, host="127.0.0.1", security=NO_AUTH) for r in replicas]
    channels = []
    try:
        for s in servers:
            await s.start()
            channels.append(grpc.aio.insecure_channel(f"127.0.0.1:{s.port}"))
        on_a, on_b = (customer_pb2_grpc.CustomerServiceStub(c) for c in channels)
        family = await on_a.CreateFamily(pb.CreateFamilyRequest(family=pb.Family(display_name="F")))
        c = await on_a.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name)))
        get = pb.GetCustomerRequest(name=c.name)
        mask = FieldMask(paths=["display_name"])
        for i in range(10):
            for stub, r in ((on_a, a), (on_b, b)):
                # The create's invalidation may still be on its way to B: read until cached.
                for _ in range(200):
                    await stub.GetCustomer(get)
                    if len(local(r)) == 1:
                        break
                assert len(local(r)) == 1  # served from memory from now on
            renamed = pb.Customer(name=c.name, display_name=f"name {i}")
            await on_a.UpdateCustomer(pb.UpdateCustomerRequest(customer=renamed, update_mask=mask))
            assert (await on_a.GetCustomer(get)).display_name == f"name {i}"
            await eventually(lambda: len(local(b)) == 0, "B evicted the renamed customer")
            assert (await on_b.GetCustomer(get)).display_name == f"name {i}"
    finally:
        for ch in channels:
            await ch.close()
        for s in servers:
            await s.stop(0)


async def test_a_killed_tracking_connection_empties_the_cache_until_it_is_back(
    ctx: Context, replicas: tuple[Context, Context]
) -> None:
    _, b = replicas
    assert b.tracker is not None
    cid = uuid.uuid4()
    await filled(b, cid, b"v1")
    killed = b.tracker.client_id
    await ctx.valkey.execute_command("CLIENT", "KILL", "ID", killed)
    # Written while B may not be listening: its invalidation may never reach B.
    await ctx.cache.invalidate(cid)
    await eventually(lambda: b.tracker is not None and b.tracker.sessions >= 2, "tracking back")
    assert b.tracker.client_id != killed
    await settles(b, cid, b"v2")


async def test_a_failing_subscriber_empties_the_cache_until_tracking_is_back(
    ctx: Context, replicas: tuple[Context, Context]
) -> None:
    _, b = replicas
    assert b.tracker is not None
    cid = uuid.uuid4()
    await filled(b, cid, b"v1")
    # A message the subscriber cannot read (anyone may publish on the channel).
    await ctx.valkey.publish("__redis__:invalidate", "not a list of keys")
    await eventually(lambda: b.tracker is not None and b.tracker.sessions >= 2, "tracking back")
    assert len(local(b)) == 0
    await filled(b, cid, b"v1")  # Valkey still holds v1: B keeps it in memory again
    await ctx.cache.invalidate(cid)
    await eventually(lambda: local(b).get(KIND, cid) is None, "the new session evicts too")
    await settles(b, cid, b"v2")


@pytest.fixture
async def own_valkey(tmp_path: Path) -> AsyncIterator[Valkey]:
    """A Valkey of this test's own: restarting the session's would disturb other tests."""
    server = Valkey(tmp_path, free_port())
    server.prepare()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_no_stale_value_survives_a_valkey_restart(
    settings: Settings, base_env: dict[str, str], own_valkey: Valkey
) -> None:
    env = {**base_env, "DB_NAME": settings.db.name, "VALKEY_PORT": str(own_valkey.port)}
    a = await replica(load_settings(env))
    b = await replica(load_settings(env))
    try:
        cid = uuid.uuid4()
        await filled(b, cid, b"v1")
        own_valkey.stop()
        await eventually(lambda: not local(b).tracking, "B notices Valkey is gone")
        assert len(local(b)) == 0
        bypassed = served(KIND, "bypass")
        assert await read(b, cid, b"unused") is None  # Valkey down: the database answers
        assert served(KIND, "bypass") == bypassed + 1
        await a.cache.invalidate(cid)  # the write's bump is lost with the server
        own_valkey.start()  # empty: generations start from 0 again
        await eventually(lambda: local(b).tracking, "B tracking the restarted Valkey", 30)
        await settles(b, cid, b"v2")
    finally:
        await a.aclose()
        await b.aclose()
