"""The consumer's script path writes exactly what notices.publish writes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from customer_core import batch_notices as notifier
from customer_core import cache_keys, notices
from customer_core.context import Context
from customer_core.notices import Activity, Notice
from customer_core.usecases.notifier import Notifier


def activities(cid: uuid.UUID, fid: uuid.UUID, other: uuid.UUID) -> list[Activity]:
    at = datetime(2025, 3, 3, 8, 30, tzinfo=UTC)
    out = [
        Activity("order_placed", cid, fid, order_id="ord-é-1", occurred_at=at),
        Activity("points_earned", cid, fid, order_id="ord-é-1", points=110, occurred_at=at),
        Activity(
            "campaign_bonus",
            cid,
            fid,
            order_id="ord-é-1",
            points=50,
            campaign=str(uuid.UUID(int=7)),
            occurred_at=at,
        ),
        Activity("tier_changed", other, None, tier="gold", occurred_at=at),
    ]
    # Enough for two script calls and for the replay window to trim.
    out += [
        Activity("order_completed", other, None, order_id=f"o{i}", occurred_at=at + timedelta(i))
        for i in range(1200)
    ]
    return out


async def written(
    ctx: Context, publish: Callable[[], Awaitable[None]], streams: list[str], who: set[uuid.UUID]
) -> tuple[list[list[dict[bytes, bytes]]], list[int], list[bytes]]:
    """Stream entries (fields only), stream lengths and the notices for `who` that a
    publish call produced (the channel is shared with other tests' consumers)."""
    await ctx.valkey.delete(*streams)
    pubsub = ctx.valkey.pubsub()
    await pubsub.subscribe(notices.NOTICE_CHANNEL)
    await pubsub.get_message(timeout=5)  # the subscribe confirmation
    await publish()
    heard: list[bytes] = []
    deadline = asyncio.get_running_loop().time() + 20
    while len(heard) < len(who) and asyncio.get_running_loop().time() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message is not None and Notice.decode(message["data"]).customer_id in who:
            heard.append(message["data"])
    await pubsub.aclose()
    entries = [[f for _, f in await ctx.valkey.xrange(s)] for s in streams]
    lengths = [await ctx.valkey.xlen(s) for s in streams]
    for s in streams:
        assert 0 < await ctx.valkey.ttl(s) <= notices.REPLAY_TTL_SECONDS
    return entries, lengths, sorted(heard)


async def test_script_path_writes_what_notices_publish_writes(ctx: Context):
    cid, fid, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    batch = activities(cid, fid, other)
    extra = [Notice(cid, fid, frozenset({notices.STATS})), Notice(other, None, frozenset({"tier"}))]
    streams = [
        notices.customer_stream(cid),
        notices.family_stream(fid),
        notices.customer_stream(other),
    ]

    who = {cid, other}
    expected = await written(ctx, lambda: notices.publish(ctx.valkey, extra, batch), streams, who)
    script = notifier.publisher(ctx.valkey)
    actual = await written(ctx, lambda: notifier.publish(script, extra, batch), streams, who)

    # Trimming is approximate (MAXLEN ~): at least the window is kept, and how many
    # older entries survive depends on where Valkey's internal nodes end, which
    # can differ between the two paths. The window itself must be identical.
    window = notices.REPLAY_WINDOW
    assert actual[0][:2] == expected[0][:2]
    assert actual[0][2][-window:] == expected[0][2][-window:]
    assert actual[2] == expected[2]
    entries, lengths, heard = actual
    assert len(entries[0]) == 3 and entries[0] == entries[1]  # the family sees its member's
    assert [Activity.from_fields(f) for f in entries[0]] == batch[:3]
    assert 1000 <= lengths[2] < 1201  # trimmed to the replay window
    assert {Notice.decode(n).customer_id for n in heard} == who


async def test_notices_go_out_after_a_lost_script_and_valkey_errors_are_swallowed(ctx: Context):
    cid = uuid.uuid4()
    script = notifier.publisher(ctx.valkey)
    await ctx.valkey.script_flush()  # Valkey restarted: EVALSHA must fall back to loading it
    await notifier.publish(script, [], [Activity("order_placed", cid, order_id="o")])
    assert await ctx.valkey.xlen(notices.customer_stream(cid)) == 1

    bad = uuid.uuid4()
    await ctx.valkey.set(notices.customer_stream(bad), "not a stream")
    # The XADD fails inside the script: logged, never raised (notices are best effort).
    await asyncio.wait_for(notifier.publish(script, [], [Activity("order_placed", bad)]), 10)


async def test_the_notifier_bumps_cache_generations_then_publishes_in_order(ctx: Context):
    cid = uuid.uuid4()
    gen_key = cache_keys.generation_key(cid)
    before = int(await ctx.valkey.get(gen_key) or 0)
    task = Notifier(ctx)
    task.start()
    for i in range(3):
        await task.put(
            [Notice(cid, None, frozenset({notices.STATS}))],
            [Activity("order_placed", cid, order_id=f"o{i}")],
        )
    await task.close()
    assert int(await ctx.valkey.get(gen_key) or 0) > before
    entries = await ctx.valkey.xrange(notices.customer_stream(cid))
    assert [Activity.from_fields(f).order_id for _, f in entries] == ["o0", "o1", "o2"]


async def test_a_streams_ttl_is_refreshed_once_per_period_and_always_when_created(ctx: Context):
    cid = uuid.uuid4()
    key = notices.customer_stream(cid)
    now = [0.0]
    ttls = notifier.RecentTtls(every=3600, clock=lambda: now[0])
    script = notifier.publisher(ctx.valkey)

    async def write(order_id: str) -> int:
        await notifier.publish(
            script, [], [Activity("order_placed", cid, order_id=order_id)], ttls=ttls
        )
        return int(await ctx.valkey.ttl(key))

    assert await write("o1") > notices.REPLAY_TTL_SECONDS - 60
    await ctx.valkey.expire(key, 100)
    assert await write("o2") <= 100  # refreshed within the hour: left alone
    await ctx.valkey.delete(key)  # Valkey lost it (a restart without persistence)
    assert await write("o3") > notices.REPLAY_TTL_SECONDS - 60  # created again: TTL set
    entries = await ctx.valkey.xrange(key)
    assert [Activity.from_fields(f).order_id for _, f in entries] == ["o3"]
    await ctx.valkey.expire(key, 100)
    now[0] = 3600.0
    assert await write("o4") > notices.REPLAY_TTL_SECONDS - 60  # the hour passed
    assert await ctx.valkey.xlen(key) == 2
