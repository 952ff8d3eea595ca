"""The cache's own Valkey connection under faults: a look-up never raises and never
hangs; it answers "not cached" (the caller reads PostgreSQL) and the next one
reconnects."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from prometheus_client import REGISTRY

from customer_core.cache import Cache
from customer_core.context import Context
from customer_launcher.devstack import free_port


def errors(kind: str) -> float:
    value = REGISTRY.get_sample_value(
        "customer_cache_requests_total", {"cache": kind, "result": "error"}
    )
    return value or 0.0


async def warm(cache: Cache, kind: str, cid: uuid.UUID, value: bytes) -> None:
    _, slot = await cache.get(kind, cid)
    assert slot.key is not None
    await cache.put(slot, value)


@pytest.fixture
async def own_cache(ctx: Context) -> AsyncIterator[tuple[Cache, redis.Redis]]:
    """A second cache on the same server whose look-ups time out after 0.3 s."""
    kw = ctx.valkey.connection_pool.connection_kwargs
    client = redis.Redis(host=kw["host"], port=kw["port"], socket_timeout=0.3)
    cache = Cache(client, ttl_seconds=60)
    try:
        yield cache, client
    finally:
        cache.close()
        await client.aclose()


async def test_a_killed_connection_fails_its_lookups_softly_and_reconnects(ctx: Context) -> None:
    cid = uuid.uuid4()
    await warm(ctx.cache, "link", cid, b"v1")
    before = errors("link")
    lookups = [asyncio.ensure_future(ctx.cache.get("link", cid)) for _ in range(50)]
    await asyncio.sleep(0)
    # Every client but the one asking, so the cache's own connection goes too.
    await ctx.valkey.client_kill_filter(_type="normal", skipme=True)
    results = await asyncio.gather(*lookups)
    assert {value for value, _ in results} <= {b"v1", None}
    assert errors("link") - before == sum(1 for value, _ in results if value is None)
    for _ in range(50):  # the loss is noticed by the next look-up at the latest
        value, _ = await ctx.cache.get("link", cid)
        if value == b"v1":
            break
        await asyncio.sleep(0.1)
    assert value == b"v1"


async def test_lookups_work_after_valkey_forgets_its_scripts(ctx: Context) -> None:
    cid = uuid.uuid4()
    await warm(ctx.cache, "link", cid, b"v1")
    await ctx.valkey.script_flush()
    assert (await ctx.cache.get("link", cid))[0] == b"v1"
    assert (await ctx.cache.get("link", cid))[0] == b"v1"


async def test_an_unresponsive_valkey_times_out_instead_of_hanging(
    ctx: Context, own_cache: tuple[Cache, redis.Redis]
) -> None:
    cache, _ = own_cache
    cid = uuid.uuid4()
    await warm(cache, "link", cid, b"v1")
    before = errors("link")
    # The look-up script counts as a write: it waits until the pause ends (30 s),
    # while this client may still unpause.
    await ctx.valkey.execute_command("CLIENT", "PAUSE", "30000", "WRITE")
    try:
        # The look-up gives up after its 0.3 s timeout, long before the pause ends.
        value, slot = await asyncio.wait_for(cache.get("link", cid), 20)
        assert (value, slot.key) == (None, None)
        assert errors("link") == before + 1
    finally:
        await ctx.valkey.execute_command("CLIENT", "UNPAUSE")
    assert (await cache.get("link", cid))[0] == b"v1"


async def test_no_valkey_at_all_means_not_cached() -> None:
    client = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    cache = Cache(client, ttl_seconds=60)
    try:
        before = errors("link")
        for _ in range(2):
            value, slot = await cache.get("link", uuid.uuid4())
            assert (value, slot.key) == (None, None)
        assert errors("link") == before + 2
    finally:
        cache.close()
        await client.aclose()


async def test_a_password_protected_valkey(ctx: Context) -> None:
    kw = ctx.valkey.connection_pool.connection_kwargs
    cid = uuid.uuid4()
    await warm(ctx.cache, "link", cid, b"v1")
    await ctx.valkey.config_set("requirepass", "s3cret")
    try:
        right = redis.Redis(host=kw["host"], port=kw["port"], password="s3cret")
        wrong = redis.Redis(host=kw["host"], port=kw["port"], password="guess")
        good, bad = Cache(right, ttl_seconds=60), Cache(wrong, ttl_seconds=60)
        try:
            assert (await good.get("link", cid))[0] == b"v1"
            assert (await bad.get("link", cid))[0] is None
        finally:
            good.close()
            bad.close()
            await right.aclose()
            await wrong.aclose()
    finally:
        await ctx.valkey.config_set("requirepass", "")
