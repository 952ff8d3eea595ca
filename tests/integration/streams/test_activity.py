"""ActivityFeed: subscriptions, cursors, resume without gap or duplicate, flow control."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from customer_api.server import ApiServer
from customer_core import activity_streams, notices
from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.integration.streams.conftest import (
    ApiProcess,
    Member,
    Stub,
    add_activity,
    add_family,
    wait_until,
)

Feed = grpc.aio.StreamStreamCall  # type: ignore[type-arg]


def sub(
    sub_id: str, m: Member, *, family: bool = False, resume: str = ""
) -> pb.ActivityFeedRequest:
    s = pb.Subscribe(subscription_id=sub_id, resume_cursor=resume)
    if family:
        s.family = m.family
    else:
        s.customer = m.name
    return pb.ActivityFeedRequest(subscribe=s)


async def next_of(feed: Feed, kind: str, within: float = 20) -> pb.ActivityFeedResponse:
    while True:
        reply = await asyncio.wait_for(feed.read(), within)
        assert reply is not grpc.aio.EOF
        if reply.WhichOneof("payload") == kind:
            return reply


async def events(feed: Feed, n: int, within: float = 30) -> list[pb.ActivityEvent]:
    out = []
    while len(out) < n:
        out.append((await next_of(feed, "event", within)).event)
    return out


def key(cursor: str) -> tuple[int, int]:
    return activity_streams.cursor_key(cursor)


async def test_live_events_carry_increasing_cursors_per_subscription(
    ctx: Context, stub: Stub
) -> None:
    alice, bob = await add_family(ctx, members=2)
    feed = stub.ActivityFeed()
    await feed.write(sub("me", alice))
    await feed.write(sub("fam", alice, family=True))
    acks = [(await next_of(feed, "ack")).ack for _ in range(2)]
    assert {(a.subscription_id, a.subscribed, a.replay_truncated) for a in acks} == {
        ("me", True, False),
        ("fam", True, False),
    }
    await add_activity(ctx, alice, 2, kind="order_placed")
    await add_activity(ctx, bob, 1, kind="reward_redeemed")
    got = await events(feed, 5)
    mine = [e for e in got if e.subscription_id == "me"]
    family = [e for e in got if e.subscription_id == "fam"]
    placed = pb.ACTIVITY_KIND_ORDER_PLACED
    assert [(e.customer, e.points, e.kind) for e in mine] == [
        (alice.name, 1, placed),
        (alice.name, 2, placed),
    ]
    assert [e.customer for e in family] == [alice.name, alice.name, bob.name]
    assert family[2].kind == pb.ACTIVITY_KIND_REWARD_REDEEMED and family[2].family == alice.family
    for stream in (mine, family):
        assert [key(e.cursor) for e in stream] == sorted({key(e.cursor) for e in stream})
    feed.cancel()


async def test_unsubscribe_stops_events_and_ping_is_answered(ctx: Context, stub: Stub) -> None:
    [m] = await add_family(ctx)
    feed = stub.ActivityFeed()
    await feed.write(sub("s", m))
    await next_of(feed, "ack")
    await feed.write(pb.ActivityFeedRequest(unsubscribe=pb.Unsubscribe(subscription_id="s")))
    ack = (await next_of(feed, "ack")).ack
    assert (ack.subscription_id, ack.subscribed) == ("s", False)
    await add_activity(ctx, m, 3)
    await feed.write(pb.ActivityFeedRequest(ping=pb.Ping(nonce="n1")))
    # The pong comes next: nothing from the dropped subscription before it.
    reply = await asyncio.wait_for(feed.read(), 20)
    assert reply.WhichOneof("payload") == "pong" and reply.pong.nonce == "n1"
    feed.cancel()


@pytest.mark.parametrize(
    ("build", "code", "field"),
    [
        (
            lambda m: pb.Subscribe(subscription_id="", customer=m.name),
            "INVALID_ARGUMENT",
            "subscribe.subscription_id",
        ),
        (lambda m: pb.Subscribe(subscription_id="x"), "INVALID_ARGUMENT", "subscribe.target"),
        (
            lambda m: pb.Subscribe(subscription_id="x", customer="customers/nope"),
            "INVALID_ARGUMENT",
            "subscribe.customer",
        ),
        (
            lambda m: pb.Subscribe(subscription_id="x", family=m.name),
            "INVALID_ARGUMENT",
            "subscribe.family",
        ),
        (
            lambda m: pb.Subscribe(subscription_id="x", customer=m.name, resume_cursor="yesterday"),
            "INVALID_ARGUMENT",
            "subscribe.resume_cursor",
        ),
        # Digits Valkey refuses (past 64 bits, other scripts' digits that int() reads)
        # are the client's error too, not UNAVAILABLE.
        (
            lambda m: pb.Subscribe(
                subscription_id="x", customer=m.name, resume_cursor="99999999999999999999-0"
            ),
            "INVALID_ARGUMENT",
            "subscribe.resume_cursor",
        ),
        (
            lambda m: pb.Subscribe(
                subscription_id="x", customer=m.name, resume_cursor="1-18446744073709551616"
            ),
            "INVALID_ARGUMENT",
            "subscribe.resume_cursor",
        ),
        (
            lambda m: pb.Subscribe(
                subscription_id="x", customer=m.name, resume_cursor="\u0661\u0662\u0663-\u0660"
            ),
            "INVALID_ARGUMENT",
            "subscribe.resume_cursor",
        ),
        (
            lambda m: pb.Subscribe(subscription_id="x", customer=f"customers/{uuid.uuid4()}"),
            "NOT_FOUND",
            "",
        ),
        (
            lambda m: pb.Subscribe(subscription_id="x", family=f"families/{uuid.uuid4()}"),
            "NOT_FOUND",
            "",
        ),
    ],
)
async def test_a_bad_subscribe_ends_the_stream_naming_the_field(
    ctx: Context, stub: Stub, build: object, code: str, field: str
) -> None:
    [m] = await add_family(ctx)
    feed = stub.ActivityFeed()
    await feed.write(pb.ActivityFeedRequest(subscribe=build(m)))  # type: ignore[operator]
    with pytest.raises(grpc.aio.AioRpcError) as got:
        await next_of(feed, "event")
    assert got.value.code().name == code
    assert got.value.details().startswith(field)


async def test_the_same_subscription_id_twice_is_refused(ctx: Context, stub: Stub) -> None:
    [m] = await add_family(ctx)
    feed = stub.ActivityFeed()
    await feed.write(sub("dup", m))
    await next_of(feed, "ack")
    await feed.write(sub("dup", m, family=True))
    with pytest.raises(grpc.aio.AioRpcError) as got:
        await next_of(feed, "event")
    assert got.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "subscribe.subscription_id" in got.value.details()


async def test_resume_on_another_process_replays_then_goes_live_without_gap_or_duplicate(
    ctx: Context, two_apis: list[ApiProcess]
) -> None:
    [m] = await add_family(ctx)
    a, b = two_apis
    async with grpc.aio.insecure_channel(a.target) as ca:
        feed = customer_pb2_grpc.CustomerServiceStub(ca).ActivityFeed()
        await feed.write(sub("s", m))
        await next_of(feed, "ack")
        await add_activity(ctx, m, 3)
        first = await events(feed, 3)
        feed.cancel()
    # Missed while disconnected, then more published *while* the client resumes.
    await add_activity(ctx, m, 40)

    async def keep_publishing() -> None:
        for _ in range(20):
            await add_activity(ctx, m, 3)
            await asyncio.sleep(0.01)

    async with grpc.aio.insecure_channel(b.target) as cb:
        feed = customer_pb2_grpc.CustomerServiceStub(cb).ActivityFeed()
        publisher = asyncio.create_task(keep_publishing())
        await feed.write(sub("s", m, resume=first[-1].cursor))
        ack = (await next_of(feed, "ack")).ack
        assert ack.subscribed and not ack.replay_truncated
        rest = await events(feed, 40 + 60)
        await publisher
        await add_activity(ctx, m, 1, kind="tier_changed")
        last = (await events(feed, 1))[0]
        feed.cancel()
    cursors = [e.cursor for e in [*first, *rest, last]]
    assert len(set(cursors)) == len(cursors), "a duplicate"
    assert [key(c) for c in cursors] == sorted(key(c) for c in cursors)
    stored = await ctx.valkey.xrange(notices.customer_stream(m.id))
    assert [i.decode() for i, _ in stored] == cursors, "a gap"
    assert last.kind == pb.ACTIVITY_KIND_TIER_CHANGED


async def test_resume_from_before_the_window_says_the_replay_was_truncated(
    ctx: Context, stub: Stub
) -> None:
    [m] = await add_family(ctx)
    await add_activity(ctx, m, notices.REPLAY_WINDOW + 300)
    oldest, _ = (await ctx.valkey.xrange(notices.customer_stream(m.id), count=1))[0]
    feed = stub.ActivityFeed()
    await feed.write(sub("old", m, resume="1-0"))
    ack = (await next_of(feed, "ack")).ack
    assert ack.replay_truncated
    replayed = await events(feed, 1)
    assert replayed[0].cursor == oldest.decode()
    await feed.write(sub("new", m, resume=oldest.decode()))
    ack = (await next_of(feed, "ack")).ack
    assert ack.subscription_id == "new" and not ack.replay_truncated
    feed.cancel()


async def _drain(feed: Feed, into: list[pb.ActivityEvent]) -> None:
    while True:
        reply = await asyncio.wait_for(feed.read(), 30)
        if reply is grpc.aio.EOF:
            return
        into.append(reply.event)


async def test_a_stalled_reader_is_cut_off_while_others_keep_flowing(
    ctx: Context, two_apis: list[ApiProcess]
) -> None:
    [m] = await add_family(ctx)
    api = two_apis[0]  # STREAM_QUEUE_LIMIT=64 (stream_env)
    total = 900
    # No BDP probing: the stalled client's HTTP/2 window stays at its 64 KiB start.
    slow_opts = [("grpc.http2.bdp_probe", 0)]
    async with (
        grpc.aio.insecure_channel(api.target) as fast_ch,
        grpc.aio.insecure_channel(api.target, options=slow_opts) as slow_ch,
    ):
        fast = customer_pb2_grpc.CustomerServiceStub(fast_ch).ActivityFeed()
        slow = customer_pb2_grpc.CustomerServiceStub(slow_ch).ActivityFeed()
        for feed in (fast, slow):
            await feed.write(sub("s", m))
            await next_of(feed, "ack")
        for _ in range(total // 50):
            await add_activity(ctx, m, 50)
        flowing = await events(fast, total)
        assert len({e.cursor for e in flowing}) == total
        got: list[pb.ActivityEvent] = []
        with pytest.raises(grpc.aio.AioRpcError) as cut:
            await _drain(slow, got)
        assert cut.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "resume_cursor" in cut.value.details()
        assert 0 < len(got) < total
        # The fast stream is still open and live.
        await add_activity(ctx, m, 1)
        assert len(await events(fast, 1)) == 1
        fast.cancel()
        # Reconnecting from the last cursor received gets exactly the rest.
        again = customer_pb2_grpc.CustomerServiceStub(slow_ch).ActivityFeed()
        await again.write(sub("s", m, resume=got[-1].cursor))
        await next_of(again, "ack")
        rest = await events(again, total + 1 - len(got))
        assert [e.cursor for e in got + rest] == [e.cursor for e in flowing] + [rest[-1].cursor]
        again.cancel()


async def test_shutdown_ends_open_streams_with_unavailable(ctx: Context, server: ApiServer) -> None:
    [m] = await add_family(ctx)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = customer_pb2_grpc.CustomerServiceStub(channel)
        feed = stub.ActivityFeed()
        await feed.write(sub("s", m))
        await next_of(feed, "ack")
        watch = stub.WatchCustomerStats(pb.WatchCustomerStatsRequest(customer=m.name))
        await watch.read()
        await server.stop(5)
        for call in (feed, watch):
            with pytest.raises(grpc.aio.AioRpcError) as got:
                await asyncio.wait_for(call.read(), 20)
            assert got.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "shutting down" in got.value.details()


async def test_closing_streams_frees_the_hub(ctx: Context, server: ApiServer, stub: Stub) -> None:
    members = await add_family(ctx, members=3)
    feeds = []
    for m in members:
        feed = stub.ActivityFeed()
        await feed.write(sub("c", m))
        await feed.write(sub("f", m, family=True))
        await next_of(feed, "ack")
        feeds.append(feed)
    hub = server.servicer.hub  # type: ignore[attr-defined]
    assert hub.open_streams == 3 and hub.followed == 4
    for feed in feeds:
        feed.cancel()
    await wait_until(lambda: hub.open_streams == 0 and hub.followed == 0)
