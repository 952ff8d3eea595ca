"""A re-run of unchanged records writes nothing and bumps no cache; a changed one does both."""

from __future__ import annotations

from customer_core.cache_keys import generation_key
from customer_core.context import Context
from tests.integration.streams.conftest import Stub
from tests.integration.streams.test_imports import in_messages, record


async def _state(ctx: Context) -> dict[str, tuple[object, object]]:
    """external id -> (update_time, cache generation)."""
    async with ctx.pool.acquire() as conn:
        rows = await conn.fetch("SELECT id, external_id, update_time FROM customers")
    gens = await ctx.valkey.mget([generation_key(r["id"]) for r in rows])
    return {r["external_id"]: (r["update_time"], g) for r, g in zip(rows, gens, strict=True)}


async def test_a_rerun_of_unchanged_records_leaves_rows_and_cache_generations_alone(
    ctx: Context, stub: Stub
) -> None:
    records = [record(i) for i in range(300)]
    await stub.ImportCustomers(in_messages(records, 100))
    before = await _state(ctx)
    again = await stub.ImportCustomers(in_messages(records, 100))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 300)
    assert await _state(ctx) == before


async def test_a_changed_record_is_updated_and_only_its_cache_is_bumped(
    ctx: Context, stub: Stub
) -> None:
    records = [record(i) for i in range(20)]
    await stub.ImportCustomers(in_messages(records))
    before = await _state(ctx)
    records[7] = record(7, display_name="Renamed")
    reply = await stub.ImportCustomers(in_messages(records))
    assert (reply.created, reply.updated, reply.unchanged) == (0, 1, 19)
    after = await _state(ctx)
    changed = {ext for ext in before if before[ext] != after[ext]}
    assert changed == {"ext-7"}
    (time_before, gen_before), (time_after, gen_after) = before["ext-7"], after["ext-7"]
    assert time_after > time_before  # type: ignore[operator]
    assert int(gen_after or 0) > int(gen_before or 0)  # type: ignore[call-overload]
    async with ctx.pool.acquire() as conn:
        name = await conn.fetchval("SELECT display_name FROM customers WHERE external_id = 'ext-7'")
    assert name == "Renamed"
