"""Concurrent cache look-ups share round trips: each caller still gets its own value."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from customer_core.cache import Cache
from customer_core.context import Context


async def test_concurrent_lookups_get_their_own_values(ctx: Context) -> None:
    ids = [uuid.uuid4() for _ in range(60)]
    for cid in ids:
        _, slot = await ctx.cache.get("t", cid)
        await ctx.cache.put(slot, cid.bytes)
    results = await asyncio.gather(*(ctx.cache.get("t", cid) for cid in ids * 3))
    assert [value for value, _ in results] == [cid.bytes for cid in ids * 3]
    await ctx.cache.invalidate(ids[0])
    first, _ = await ctx.cache.get("t", ids[0])
    second, _ = await ctx.cache.get("t", ids[1])
    assert first is None and second == ids[1].bytes


async def test_a_cancelled_caller_does_not_break_the_others(ctx: Context) -> None:
    ids = [uuid.uuid4() for _ in range(10)]
    for cid in ids:
        _, slot = await ctx.cache.get("t", cid)
        await ctx.cache.put(slot, b"v" + cid.bytes)
    tasks = [asyncio.ensure_future(ctx.cache.get("t", cid)) for cid in ids]
    tasks[3].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[3], asyncio.CancelledError)
    assert [d[0] for i, d in enumerate(done) if i != 3] == [  # type: ignore[index]
        b"v" + cid.bytes for i, cid in enumerate(ids) if i != 3
    ]


def _script_calls(stats: dict[str, Any]) -> int:
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval"))


async def test_lookups_arriving_within_a_window_share_round_trips(ctx: Context) -> None:
    """grpc.aio starts one call per loop turn; under load their look-ups still share trips."""
    window = 0.005
    # saturation=0: as if the event loop were saturated all the time.
    cache = Cache(ctx.valkey, ttl_seconds=60, window_seconds=window, saturation=0.0)
    ids = [uuid.uuid4() for _ in range(40)]
    for cid in ids:
        _, slot = await cache.get("w", cid)
        await cache.put(slot, cid.bytes)
    loop = asyncio.get_running_loop()
    before = _script_calls(await ctx.valkey.info("commandstats"))
    started = loop.time()
    pending = []
    for cid in ids:
        pending.append(asyncio.ensure_future(cache.get("w", cid)))
        await asyncio.sleep(0)  # the next look-up comes a loop turn later
    results = await asyncio.gather(*pending)
    elapsed = loop.time() - started
    trips = _script_calls(await ctx.valkey.info("commandstats")) - before
    cache.close()
    assert [value for value, _ in results] == [cid.bytes for cid in ids]
    # At most one round trip per window per slot in flight, plus the first one.
    assert trips <= elapsed / window + 3, f"{trips} round trips in {elapsed * 1000:.1f} ms"


async def test_an_unsaturated_server_never_waits_for_the_window(ctx: Context) -> None:
    cache = Cache(ctx.valkey, ttl_seconds=60, window_seconds=30.0)  # an absurd window
    cid = uuid.uuid4()
    for _ in range(3):  # sequential callers
        value, _ = await asyncio.wait_for(cache.get("q", cid), timeout=10)
        assert value is None
    together = asyncio.gather(*(cache.get("q", cid) for _ in range(10)))
    assert len(await asyncio.wait_for(together, timeout=10)) == 10
    cache.close()


def _spin(seconds: float) -> None:
    """Keep the event loop's thread on the CPU, as a saturated server does."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


async def test_a_saturated_server_gathers_lookups_for_a_window(ctx: Context) -> None:
    # A low threshold: on a crowded test machine the spinning thread gets only
    # a share of a core, and the test is about the gate, not the threshold.
    cache = Cache(ctx.valkey, ttl_seconds=60, window_seconds=30.0, saturation=0.1)
    cid = uuid.uuid4()
    await cache.get("q", cid)  # a round trip leaves; the load is measured from here
    _spin(0.1)
    # Saturated, and within the window of the last round trip: look-ups wait
    # to share the next one. Closing the cache fails them instead of leaving
    # their callers waiting.
    waiting = [asyncio.ensure_future(cache.get("q", cid)) for _ in range(3)]
    done, _ = await asyncio.wait(waiting, timeout=0.3)
    assert not done
    cache.close()
    for lookup in waiting:
        value, _ = await asyncio.wait_for(lookup, timeout=10)
        assert value is None  # a failed look-up is a miss, never an error
