"""The batch script writes what `Cache.invalidate` then `notices.publish` write, on a real Valkey.

Each example starts two databases in the same state, applies the definition to
one and the script to the other, and compares every key: values, stream
entries (ids aside), TTLs, and the doorbells heard on the notice channel.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer_core import batch_notices, notices
from customer_core.cache import Cache
from customer_core.cache_keys import generation_key
from customer_core.context import Context
from customer_core.notices import Activity, Notice

KINDS = ["order_placed", "points_earned", "tier_changed", "campaign_bonus"]
CHANGES = [notices.STATS, notices.POINTS, notices.TIER, notices.PROFILE]


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[Notice], list[Activity], list[str], list[uuid.UUID]]:
    people = draw(st.lists(st.uuids(), min_size=1, max_size=3, unique=True))
    families = draw(st.lists(st.uuids(), min_size=1, max_size=2, unique=True))
    who, family = st.sampled_from(people), st.none() | st.sampled_from(families)
    at = st.integers(0, 10**6).map(lambda s: datetime(2025, 3, 3, tzinfo=UTC) + timedelta(s))
    activity = st.builds(
        Activity,
        kind=st.sampled_from(KINDS),
        customer_id=who,
        family_id=family,
        order_id=st.text(max_size=8),
        points=st.integers(-1000, 1000),
        tier=st.sampled_from(["", "gold"]),
        occurred_at=at,
    )
    changed = st.frozensets(st.sampled_from(CHANGES), min_size=1)
    batch = draw(st.lists(activity, max_size=12))
    extra = draw(st.lists(st.builds(Notice, who, family, changed), max_size=4))
    streams = [notices.customer_stream(c) for c in people]
    streams += [notices.family_stream(f) for f in families]
    # Streams and generations that exist before: appended to, their TTLs refreshed.
    existing = draw(st.lists(st.sampled_from(streams), unique=True))
    counted = draw(st.lists(st.sampled_from(people), unique=True))
    return extra, batch, existing, counted


async def state(client: redis.Redis) -> dict[bytes, tuple[object, bool]]:
    """Every key: its value (a stream's entry fields, ids aside), and whether it has a
    TTL near REPLAY_TTL_SECONDS (False: none, or one set before)."""
    out: dict[bytes, tuple[object, bool]] = {}
    async for key in client.scan_iter():
        if await client.type(key) == b"stream":
            value: object = [fields for _, fields in await client.xrange(key)]
        else:
            value = await client.get(key)
        ttl = await client.ttl(key)
        out[key] = (value, ttl > notices.REPLAY_TTL_SECONDS - 60)
    return out


async def heard(pubsub: redis.client.PubSub, who: set[uuid.UUID]) -> list[bytes]:
    """The doorbells for `who` (one each), in the order they came."""
    out: list[bytes] = []
    deadline = asyncio.get_running_loop().time() + 3
    while len(out) < len(who) and asyncio.get_running_loop().time() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if message is not None and Notice.decode(message["data"]).customer_id in who:
            out.append(message["data"])
    return out


@pytest.fixture
async def two_dbs(ctx: Context) -> AsyncIterator[tuple[redis.Redis, redis.Redis]]:
    one = redis.Redis.from_url(ctx.settings.valkey.url(1))
    two = redis.Redis.from_url(ctx.settings.valkey.url(2))
    try:
        yield one, two
    finally:
        for client in (one, two):
            await client.flushdb()
            await client.aclose()


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches())
async def test_the_script_writes_what_invalidate_then_publish_write(
    ctx: Context,
    two_dbs: tuple[redis.Redis, redis.Redis],
    case: tuple[list[Notice], list[Activity], list[str], list[uuid.UUID]],
) -> None:
    extra, batch, existing, counted = case
    defined, copied = two_dbs
    bump = sorted({n.customer_id for n in extra})  # as the consumer's Notifier bumps
    who = {n.customer_id for n in extra} | {a.customer_id for a in batch}
    for client in two_dbs:
        await client.flushdb()
        for key in existing:
            await client.xadd(key, {"a": "[]"})
            await client.expire(key, 100)
        for cid in counted:
            await client.set(generation_key(cid), 7)
    pubsub = ctx.valkey.pubsub()
    await pubsub.subscribe(notices.NOTICE_CHANNEL)
    await pubsub.get_message(timeout=5)  # the subscribe confirmation
    try:
        cache = Cache(defined, ttl_seconds=60)
        await cache.invalidate(*bump)
        await notices.publish(defined, extra, batch)
        cache.close()
        rang = await heard(pubsub, who)

        script = batch_notices.publisher(copied)
        await batch_notices.publish(script, extra, batch, bump, chunk=5)
        assert await heard(pubsub, who) == rang
    finally:
        await pubsub.aclose()
    assert await state(copied) == await state(defined)
