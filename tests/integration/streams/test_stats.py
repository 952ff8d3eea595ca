"""GetCustomerStats and WatchCustomerStats on real PostgreSQL and Valkey."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from customer_api.server import ApiServer
from customer_core import notices
from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.integration.streams.conftest import (
    ApiProcess,
    Stub,
    add_family,
    set_orders,
    wait_until,
)


async def test_get_customer_stats_reads_counts_top_drinks_peak_hours_and_balance(
    ctx: Context, stub: Stub
) -> None:
    [m] = await add_family(ctx)
    async with ctx.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO order_stats (customer_id, order_count, completed_count, cancelled_count,"
            " total_spent_minor, payment_count, currency_code, first_order_at, last_order_at)"
            " VALUES ($1, 9, 7, 1, 4550, 7, 'USD', now() - interval '3 days', now())",
            m.id,
        )
        drinks = [(f"d{i}", f"Drink {i}", c) for i, c in enumerate([3, 9, 1, 4, 4, 2, 8])]
        await conn.executemany(
            "INSERT INTO order_stats_drinks VALUES ($1, $2, $3, $4)",
            [(m.id, *d) for d in drinks],
        )
        # Monday 08:00 is hour 8; Sunday 23:00 is hour 167.
        hours = [(8, 5), (167, 7), (9, 1), (30, 5), (100, 2), (101, 3)]
        await conn.executemany(
            "INSERT INTO order_stats_hours VALUES ($1, $2, $3)", [(m.id, *h) for h in hours]
        )
        await conn.execute(
            "UPDATE loyalty_accounts SET balance = 120, tier = 'gold' WHERE customer_id = $1", m.id
        )
    s = await stub.GetCustomerStats(pb.GetCustomerStatsRequest(customer=m.name))
    assert (s.order_count, s.completed_count, s.cancelled_count) == (9, 7, 1)
    assert (s.total_spent.currency_code, s.total_spent.amount_minor, s.payment_count) == (
        "USD",
        4550,
        7,
    )
    assert [(d.drink_id, d.count) for d in s.top_drinks] == [
        ("d1", 9),
        ("d6", 8),
        ("d3", 4),
        ("d4", 4),
        ("d0", 3),
    ]
    assert [(h.day_of_week, h.hour, h.count) for h in s.peak_hours] == [
        (7, 23, 7),
        (1, 8, 5),
        (2, 6, 5),
        (5, 5, 3),
        (5, 4, 2),
    ]
    assert s.first_order_time.seconds < s.last_order_time.seconds
    watch = stub.WatchCustomerStats(pb.WatchCustomerStatsRequest(customer=m.name))
    first = await watch.read()
    assert (first.points_balance, first.tier, first.stats.order_count) == (120, pb.TIER_GOLD, 9)
    watch.cancel()


async def test_stats_of_a_customer_without_orders_are_zero(ctx: Context, stub: Stub) -> None:
    [m] = await add_family(ctx)
    s = await stub.GetCustomerStats(pb.GetCustomerStatsRequest(customer=m.name))
    assert (s.customer, s.order_count, list(s.top_drinks)) == (m.name, 0, [])


@pytest.mark.parametrize(
    ("customer", "code"),
    [
        ("", grpc.StatusCode.INVALID_ARGUMENT),
        ("customers/not-a-uuid", grpc.StatusCode.INVALID_ARGUMENT),
        ("families/00000000-0000-0000-0000-000000000001", grpc.StatusCode.INVALID_ARGUMENT),
        (f"customers/{uuid.UUID(int=7)}", grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_bad_or_unknown_customer_is_refused_by_both_calls(
    stub: Stub, customer: str, code: grpc.StatusCode
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as got:
        await stub.GetCustomerStats(pb.GetCustomerStatsRequest(customer=customer))
    assert got.value.code() == code
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        assert got.value.details().startswith("customer:")
    watch = stub.WatchCustomerStats(pb.WatchCustomerStatsRequest(customer=customer))
    with pytest.raises(grpc.aio.AioRpcError) as got:
        await watch.read()
    assert got.value.code() == code


async def test_watch_sends_changes_coalesced_and_nothing_without_change(
    ctx: Context, server: ApiServer, stub: Stub
) -> None:
    [m] = await add_family(ctx)
    watch = stub.WatchCustomerStats(pb.WatchCustomerStatsRequest(customer=m.name))
    assert (await watch.read()).stats.order_count == 0
    await set_orders(ctx, m, 1)
    assert (await asyncio.wait_for(watch.read(), 20)).stats.order_count == 1
    # A burst of 30 changes: far fewer updates than notices, ending at the last value.
    for n in range(2, 32):
        await set_orders(ctx, m, n)
    seen = []
    while not seen or seen[-1] != 31:
        seen.append((await asyncio.wait_for(watch.read(), 20)).stats.order_count)
    assert seen == sorted(seen)
    assert len(seen) < 15, seen
    # Notices that change nothing send nothing.
    for _ in range(3):
        await notices.publish(ctx.valkey, [notices.Notice(m.id, None, frozenset({notices.STATS}))])
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(watch.read(), 1.0)
    # Cancelling the stream frees its watch in the hub.
    watch.cancel()
    hub = server.servicer.hub  # type: ignore[attr-defined]
    await wait_until(lambda: hub.open_streams == 0 and hub.followed == 0)


async def test_a_stream_with_a_stalled_reader_keeps_one_snapshot_and_sees_the_latest(
    ctx: Context, stub: Stub
) -> None:
    [m] = await add_family(ctx)
    watch = stub.WatchCustomerStats(pb.WatchCustomerStatsRequest(customer=m.name))
    await watch.read()
    for n in range(1, 6):
        await set_orders(ctx, m, n)
        await asyncio.sleep(0.3)  # beyond the coalescing interval: each is an update
    seen = []
    while not seen or seen[-1] != 5:
        seen.append((await asyncio.wait_for(watch.read(), 20)).stats.order_count)
    assert seen[-1] == 5 and seen == sorted(set(seen))
    watch.cancel()


async def test_change_through_one_process_reaches_a_watch_held_on_the_other(
    ctx: Context, two_apis: list[ApiProcess]
) -> None:
    [m] = await add_family(ctx)
    a, b = two_apis
    async with (
        grpc.aio.insecure_channel(a.target) as ca,
        grpc.aio.insecure_channel(b.target) as cb,
    ):
        on_a = customer_pb2_grpc.CustomerServiceStub(ca)
        on_b = customer_pb2_grpc.CustomerServiceStub(cb)
        watch = on_b.WatchCustomerStats(pb.WatchCustomerStatsRequest(customer=m.name))
        assert (await watch.read()).stats.order_count == 0
        # Write the change, and publish its notice, as process A's own writers do.
        await set_orders(ctx, m, 4)
        update = await asyncio.wait_for(watch.read(), 20)
        assert update.stats.order_count == 4
        got = await on_a.GetCustomerStats(pb.GetCustomerStatsRequest(customer=m.name))
        assert got.order_count == 4
        watch.cancel()
