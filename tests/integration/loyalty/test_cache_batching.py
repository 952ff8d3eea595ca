"""Concurrent cache look-ups share round trips: each caller still gets its own value."""

from __future__ import annotations

import asyncio
import uuid

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
