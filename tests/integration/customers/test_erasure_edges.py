"""Erasure's edges: what a replay answers, a reader racing the erasure, the ledger's one
permitted change, responses stored before migration 0011, and what arrives later."""

from __future__ import annotations

import json
import uuid

import asyncpg
import grpc
import pytest

from customer_core.config import load_settings
from customer_core.context import Context, connect_db
from customer_core.db import erasure as erasure_db
from customer_core.db.migrate import load_migrations
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_launcher.devstack import DevStack
from tests.integration.customers.personal_data import (
    COFFEE,
    Stub,
    find_in_database,
    find_in_valkey,
    key,
    order_cancelled,
    profile,
    v,
)


async def test_a_replayed_response_about_an_erased_customer_is_what_a_fresh_call_answers(
    api: Stub, ctx: Context
) -> None:
    family = await api.CreateFamily(pb.CreateFamilyRequest(family=pb.Family(display_name="Ro")))
    ana = await api.CreateCustomer(
        pb.CreateCustomerRequest(customer=profile(family.name, "ana", pb.FAMILY_ROLE_OWNER))
    )
    add = pb.AddFavoriteRequest(
        parent=ana.name,
        favorite=pb.Favorite(drink_id="latte", drink_name=v("fav")),
        idempotency_key=key(),
    )
    await api.AddFavorite(add)
    delete = pb.DeleteCustomerRequest(name=ana.name, idempotency_key=key())
    await api.DeleteCustomer(delete)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.AddFavorite(add)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert ana.name in (caught.value.details() or "")
    # Another request under the key is still a conflict, and the delete still replays OK.
    other = pb.AddFavoriteRequest(
        parent=ana.name,
        favorite=pb.Favorite(drink_id="mocha", drink_name="Mocha"),
        idempotency_key=add.idempotency_key,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.AddFavorite(other)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await api.DeleteCustomer(delete)


async def test_a_replayed_adjustment_or_wallet_switch_keeps_its_words_only_while_they_live(
    api: Stub, ctx: Context
) -> None:
    family = await api.CreateFamily(pb.CreateFamilyRequest(family=pb.Family(display_name="Ro")))
    ana, bo = [
        await api.CreateCustomer(pb.CreateCustomerRequest(customer=profile(family.name, n, role)))
        for n, role in (("ana", pb.FAMILY_ROLE_OWNER), ("bo", pb.FAMILY_ROLE_ADULT))
    ]
    adjust_ana, adjust_bo = [
        pb.AdjustPointsRequest(
            customer=c.name, points=50, reason=v(f"why{n}"), idempotency_key=key()
        )
        for n, c in (("ana", ana), ("bo", bo))
    ]
    first_bo = [await api.AdjustPoints(r) for r in (adjust_ana, adjust_bo)][1]
    switch = pb.SetFamilyWalletRequest(
        family=family.name, pooled=True, requested_by=bo.name, idempotency_key=key()
    )
    switched = await api.SetFamilyWallet(switch)

    await api.DeleteCustomer(pb.DeleteCustomerRequest(name=ana.name))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.AdjustPoints(adjust_ana)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert ana.name in (caught.value.details() or "")
    # A live member's adjustment and the family's switch are still the first answers.
    assert await api.AdjustPoints(adjust_bo) == first_bo
    assert await api.SetFamilyWallet(switch) == switched

    await api.DeleteCustomer(pb.DeleteCustomerRequest(name=bo.name))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.SetFamilyWallet(switch)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert family.name in (caught.value.details() or "")
    assert await find_in_database(ctx, [v("whyana"), v("whybo")]) == set()


async def test_a_reader_that_raced_the_erasure_stores_nothing_in_the_cache(ctx: Context) -> None:
    cid = uuid.uuid4()
    _, early = await ctx.cache.get("customer", cid)
    await ctx.cache.put(early, v("early").encode())
    _, late = await ctx.cache.get("customer", cid)  # the value above is a hit now
    assert late.key is None
    _, racing = await ctx.cache.get("order_ctx", cid)
    await ctx.cache.forget(cid)
    await ctx.cache.put(racing, v("racing").encode())  # read before the erasure committed
    assert await find_in_valkey(ctx, [v("early"), v("racing")]) == set()


async def test_the_ledger_allows_erasing_a_reason_and_nothing_else(ctx: Context) -> None:
    async with ctx.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO families (id, display_name) VALUES ($1, 'F')", fid := uuid.uuid4()
        )
        await conn.execute(
            "INSERT INTO customers (id, family_id, username, display_name)"
            " VALUES ($1, $2, $3, 'M')",
            cid := uuid.uuid4(),
            fid,
            v("led"),
        )
        account = await conn.fetchval(
            "INSERT INTO loyalty_accounts (id, customer_id, balance)"
            " VALUES ($1, $2, 5) RETURNING id",
            uuid.uuid4(),
            cid,
        )
        await conn.execute(
            "INSERT INTO loyalty_points (account_id, member_id, kind, points, reason, source,"
            " idempotency_key) VALUES ($1, $2, 'adjust', 5, 'words', 'operator', 'k')",
            account,
            cid,
        )
        for change, erasing in (
            ("reason = 'x'", False),
            ("points = 6", True),
            ("reason = 'x', points = 6", True),
        ):
            async with conn.transaction():
                await conn.execute(
                    "SELECT set_config('customer.erasure', $1, true)", "on" if erasing else "off"
                )
                with pytest.raises(asyncpg.RaiseError, match="append-only"):
                    await conn.execute(f"UPDATE loyalty_points SET {change}")
        async with conn.transaction():
            await conn.execute("SELECT set_config('customer.erasure', 'on', true)")
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute("DELETE FROM loyalty_points")
        async with conn.transaction():
            await erasure_db.erase_customer_data(conn, [cid])
        row = await conn.fetchrow("SELECT reason, points FROM loyalty_points")
        assert (row["reason"], row["points"]) == (erasure_db.ERASED_REASON, 5)


async def test_responses_stored_before_the_migration_are_found_by_erasure(
    stack: DevStack, base_env: dict[str, str]
) -> None:
    assert stack.postgres is not None
    name = f"before_0011_{uuid.uuid4().hex[:8]}"
    stack.postgres.psql(f"CREATE DATABASE {name}")
    conn = await connect_db(load_settings({**base_env, "DB_NAME": name}))
    try:
        migrations = {m.version: m for m in load_migrations()}
        for version in sorted(v for v in migrations if v < 11):
            await conn.execute(migrations[version].sql)
        cid, fid = uuid.uuid4(), uuid.uuid4()
        stored = {
            "CreateCustomer": {"id": str(cid), "family_id": str(fid), "username": v("old")},
            "AddFavorite": {"id": str(uuid.uuid4()), "customer_id": str(cid)},
            "CreateFamily": {"id": str(fid), "display_name": v("oldfamily")},
        }
        for method, response in stored.items():
            await conn.execute(
                "INSERT INTO idempotency_keys (key, method, request_hash, response)"
                " VALUES ($1, $1, 'h', $2)",
                method,
                json.dumps(response).encode(),
            )
        await conn.execute(
            "INSERT INTO idempotency_keys (key, method, request_hash, response)"
            " VALUES ('d', 'DeleteCustomer', 'h', '')"
        )
        await conn.execute(migrations[11].sql)
        rows = await conn.fetch("SELECT key, customer_id, family_id FROM idempotency_keys")
        assert {r["key"]: (r["customer_id"], r["family_id"]) for r in rows} == {
            "CreateCustomer": (cid, None),
            "AddFavorite": (cid, None),
            "CreateFamily": (None, fid),
            "d": (None, None),
        }
    finally:
        await conn.close()
        stack.postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def test_what_arrives_about_a_customer_after_the_erasure_keeps_none_of_its_words(
    api: Stub, ctx: Context
) -> None:
    family = await api.CreateFamily(pb.CreateFamilyRequest(family=pb.Family(display_name="Lo")))
    owner, child = [
        await api.CreateCustomer(pb.CreateCustomerRequest(customer=profile(family.name, who, role)))
        for who, role in (("late", pb.FAMILY_ROLE_OWNER), ("latechild", pb.FAMILY_ROLE_CHILD))
    ]
    await api.AdjustPoints(
        pb.AdjustPointsRequest(
            customer=owner.name, points=300, reason="start", idempotency_key=key()
        )
    )
    await api.SetFamilyWallet(
        pb.SetFamilyWalletRequest(family=family.name, pooled=True, requested_by=owner.name)
    )
    # A second adult decides once the child is gone, and reverses the owner's hold.
    adult = await api.CreateCustomer(
        pb.CreateCustomerRequest(customer=profile(family.name, "adult", pb.FAMILY_ROLE_ADULT))
    )
    asked = await api.RedeemReward(
        pb.RedeemRewardRequest(
            customer=child.name, reward=COFFEE, order_id="o-1", idempotency_key=key()
        )
    )
    held = await api.RedeemReward(
        pb.RedeemRewardRequest(
            customer=owner.name, reward=COFFEE, order_id="o-2", idempotency_key=key()
        )
    )
    for gone in (owner, child):
        await api.DeleteCustomer(pb.DeleteCustomerRequest(name=gone.name))

    await api.DeclineRedemption(
        pb.DeclineRedemptionRequest(
            redemption=asked.redemption.name, approver=adult.name, reason=v("latedecline")
        )
    )
    await api.ReverseRedemption(
        pb.ReverseRedemptionRequest(redemption=held.redemption.name, reason=v("latereverse"))
    )
    await order_cancelled(ctx, uuid.UUID(owner.name.split("/")[1]))  # reason v("cancel")

    values = [v("latedecline"), v("latereverse"), v("cancel")]
    assert await find_in_database(ctx, values) == set()
    assert await find_in_valkey(ctx, values) == set()
    # A live member's words stay.
    await api.AdjustPoints(
        pb.AdjustPointsRequest(
            customer=adult.name, points=5, reason=v("kept"), idempotency_key=key()
        )
    )
    assert {x for _, _, x in await find_in_database(ctx, [v("kept")])} == {v("kept")}


async def test_the_cache_remembers_only_the_slots_that_have_not_expired(ctx: Context) -> None:
    cid = uuid.uuid4()
    for _ in range(5):
        _, slot = await ctx.cache.get("customer", cid)
        await ctx.cache.put(slot, b"x")
        await ctx.cache.invalidate(cid)  # every write moves the generation: a new slot
    slots = f"cs:{{{cid}}}:slots"
    assert await ctx.valkey.zcard(slots) == 5
    # Slots whose values expired are shed at the next store.
    await ctx.valkey.zadd(slots, {"cs:gone": 1})
    _, slot = await ctx.cache.get("customer", cid)
    await ctx.cache.put(slot, b"x")
    assert await ctx.valkey.zcard(slots) == 6
    assert await ctx.valkey.zscore(slots, "cs:gone") is None
