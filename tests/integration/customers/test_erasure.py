"""Erasure is complete: after DeleteCustomer and the purge job, no table and no Valkey
key holds any personal value a customer ever gave, through any RPC that stores one.

The search walks every column of every table in the database (and every key of
Valkey), so a table added later that keeps personal data fails this test
without anyone having to list it here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from customer_core.config import load_settings
from customer_core.context import Context, connect_db
from customer_core.db import erasure as erasure_db
from customer_core.db.migrate import load_migrations
from customer_core.domain.jobs import JobPolicy
from customer_core.domain.orders import Cancelled, Item, OrderEvent, Placed, Topic
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from customer_core.usecases.events import Incoming, apply_batch
from customer_core.usecases.jobs.cleanup import clean_up
from customer_launcher.devstack import DevStack

Stub = customer_pb2_grpc.CustomerServiceStub
COFFEE = "rewards/5eed0000-0000-4000-8000-000000000002"  # 100 points

TOKEN = uuid.uuid4().hex[:8]


def v(label: str) -> str:
    """A value no other data contains: lower-case ASCII, so JSON and protobuf keep it as is."""
    return f"zq{label}{TOKEN}"


def key() -> str:
    return str(uuid.uuid4())


# Where a personal value may stay after erasure, and why (docs/security.md says the same):
# the opening balance an import posted is keyed by the importer's external id in the
# append-only ledger, so importing the same person again cannot post it twice.
KEPT = {
    ("loyalty_points", "source_ref", v("ext")),
    ("loyalty_points", "idempotency_key", v("ext")),
}


async def find_in_database(ctx: Context, values: Sequence[str]) -> set[tuple[str, str, str]]:
    """(table, column, value) for every value found in any column of any table."""
    needles = [x.lower() for x in values]
    found: set[tuple[str, str, str]] = set()
    async with ctx.pool.acquire() as conn:
        columns = await conn.fetch(
            "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c"
            " JOIN information_schema.tables t USING (table_schema, table_name)"
            " WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'"
            " ORDER BY 1, 2"
        )
        assert len({c["table_name"] for c in columns}) > 20  # the walk sees the schema
        for c in columns:
            table, column = c["table_name"], c["column_name"]
            if c["data_type"] == "bytea":  # the bytes, as UTF-8
                where = f"position(convert_to(n, 'UTF8') in t.\"{column}\") > 0"
            else:  # any other type, as its text (arrays, jsonb, ...)
                where = f'strpos(lower(t."{column}"::text), n) > 0'
            rows = await conn.fetch(
                f'SELECT DISTINCT n FROM "{table}" t, unnest($1::text[]) n WHERE {where}',
                needles,
            )
            found |= {(table, column, r["n"]) for r in rows}
    return found


async def valkey_entries(ctx: Context) -> AsyncIterator[tuple[bytes, bytes]]:
    """(key, one stored piece) for every key of every type."""
    client = ctx.valkey
    async for k in client.scan_iter(count=500):
        kind = (await client.type(k)).decode()
        pieces: list[bytes] = [k]
        if kind == "string":
            pieces.append(await client.get(k) or b"")
        elif kind == "hash":
            for field, value in (await client.hgetall(k)).items():
                pieces += [field, value]
        elif kind == "list":
            pieces += await client.lrange(k, 0, -1)
        elif kind == "set":
            pieces += list(await client.smembers(k))
        elif kind == "zset":
            pieces += await client.zrange(k, 0, -1)
        elif kind == "stream":
            for _id, fields in await client.xrange(k):
                for field, value in fields.items():
                    pieces += [field, value]
        for piece in pieces:
            yield k, piece


async def find_in_valkey(ctx: Context, values: Sequence[str]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    async for k, piece in valkey_entries(ctx):
        text = piece.lower()
        found |= {(k.decode(errors="replace"), x) for x in values if x.encode() in text}
    return found


def profile(family: str, who: str, role: pb.FamilyRole.ValueType) -> pb.Customer:
    return pb.Customer(
        family=family,
        username=v(f"{who}user"),
        display_name=v(f"{who}name"),
        email=f"{v(who + 'mail')}@example.org",
        role=role,
        preferences=pb.Preferences(milk=pb.MILK_TYPE_OAT, extra_shots=2),
        dietary=pb.Dietary(
            restrictions=[pb.DIETARY_RESTRICTION_VEGAN], allergies=[v(f"{who}allergy")]
        ),
    )


async def order_cancelled(ctx: Context, customer: uuid.UUID) -> None:
    """An order placed then cancelled with a reason, through the consumer's batch path."""
    oid = f"ord-{uuid.uuid4().hex[:12]}"
    now = datetime.now(UTC)
    item = Item("latte", "Latte", "grande", 1, 450)
    events = [
        OrderEvent(key(), Topic.PLACED, now, customer, oid, 1, Placed((item,), "USD", 450, 450)),
        OrderEvent(key(), Topic.CANCELLED, now, customer, oid, 1, Cancelled(v("cancel"))),
    ]
    result = await apply_batch(
        ctx, [Incoming(e, e.topic.value, 0, i) for i, e in enumerate(events)]
    )
    assert not result.rejected, result.rejected


async def test_erasure_leaves_no_personal_value_in_any_table_or_valkey_key(
    api: Stub, ctx: Context
) -> None:
    family = await api.CreateFamily(
        pb.CreateFamilyRequest(family=pb.Family(display_name=v("family")), idempotency_key=key())
    )
    create = pb.CreateCustomerRequest(
        customer=profile(family.name, "owner", pb.FAMILY_ROLE_OWNER), idempotency_key=key()
    )
    owner = await api.CreateCustomer(create)
    child = await api.CreateCustomer(pb.CreateCustomerRequest(
        customer=profile(family.name, "child", pb.FAMILY_ROLE_CHILD), idempotency_key=key()
    ))  # fmt: skip
    await api.UpdateCustomer(pb.UpdateCustomerRequest(
        customer=pb.Customer(
            name=owner.name, display_name=v("newname"), email=f"{v('newmail')}@example.org",
            dietary=pb.Dietary(allergies=[v("newallergy")]),
        ),
        update_mask=FieldMask(paths=["display_name", "email", "dietary.allergies"]),
        idempotency_key=key(),
    ))  # fmt: skip

    favorite = await api.AddFavorite(pb.AddFavoriteRequest(
        parent=owner.name,
        favorite=pb.Favorite(drink_id="latte", drink_name=v("drink"),
                             customization=pb.Customization(syrups=[v("syrup")], notes=v("notes"))),
        idempotency_key=key(),
    ))  # fmt: skip
    await api.UpdateFavorite(pb.UpdateFavoriteRequest(
        favorite=pb.Favorite(name=favorite.name, customization=pb.Customization(
            notes=v("newnotes"))),
        update_mask=FieldMask(paths=["customization"]), idempotency_key=key(),
    ))  # fmt: skip
    await api.SetUsualOrder(pb.SetUsualOrderRequest(favorite=favorite.name, idempotency_key=key()))

    await api.AdjustPoints(pb.AdjustPointsRequest(
        customer=owner.name, points=500, reason=v("adjust"), idempotency_key=key()
    ))  # fmt: skip
    await api.SetFamilyWallet(pb.SetFamilyWalletRequest(
        family=family.name, pooled=True, requested_by=owner.name, idempotency_key=key()
    ))  # fmt: skip
    asked = await api.RedeemReward(pb.RedeemRewardRequest(
        customer=child.name, reward=COFFEE, order_id="o-1", idempotency_key=key()
    ))  # fmt: skip
    assert asked.redemption.state == pb.REDEMPTION_STATE_PENDING_APPROVAL
    await api.DeclineRedemption(pb.DeclineRedemptionRequest(
        redemption=asked.redemption.name, approver=owner.name, reason=v("decline"),
        idempotency_key=key(),
    ))  # fmt: skip
    held = await api.RedeemReward(pb.RedeemRewardRequest(
        customer=owner.name, reward=COFFEE, order_id="o-2", idempotency_key=key()
    ))  # fmt: skip
    await api.ReverseRedemption(pb.ReverseRedemptionRequest(
        redemption=held.redemption.name, reason=v("reverse"), idempotency_key=key()
    ))  # fmt: skip
    await order_cancelled(ctx, uuid.UUID(owner.name.split("/")[1]))

    imported = pb.ImportRecord(
        external_id=v("ext"), family_external_id=v("famext"), family_display_name=v("impfamily"),
        username=v("impuser"), display_name=v("impname"), email=f"{v('impmail')}@example.org",
        role=pb.FAMILY_ROLE_OWNER, dietary=pb.Dietary(allergies=[v("impallergy")]),
        favorites=[pb.ImportFavorite(drink_id="mocha", drink_name=v("impdrink"),
                                     customization=pb.Customization(notes=v("impnotes")))],
        opening_points=40,
    )  # fmt: skip
    summary = await api.ImportCustomers(iter([pb.ImportCustomersRequest(record=imported)]))
    assert summary.created == 1, summary
    imported_name = (await api.GetCustomer(pb.GetCustomerRequest(username=v("impuser")))).name

    # Every read that caches or streams something about them.
    for name in (owner.name, child.name, imported_name):
        await api.GetCustomer(pb.GetCustomerRequest(name=name))
        await api.GetOrderContext(pb.GetOrderContextRequest(customer=name))
        await api.ValidateCustomer(pb.ValidateCustomerRequest(customer=name))
        await api.ListFavorites(pb.ListFavoritesRequest(parent=name))
    await api.GetUsualOrder(pb.GetUsualOrderRequest(customer=owner.name))
    await api.GetFamily(pb.GetFamilyRequest(name=family.name))

    values = [
        v(label)
        for who in ("owner", "child", "imp")
        for label in (f"{who}user", f"{who}name", f"{who}mail", f"{who}allergy")
    ] + [
        v(label)
        for label in (
            "family", "newname", "newmail", "newallergy", "drink", "syrup", "notes", "newnotes",
            "adjust", "decline", "reverse", "cancel", "ext", "famext", "impfamily", "impdrink",
            "impnotes",
        )
    ]  # fmt: skip
    # The search finds what is there (it would pass vacuously otherwise).
    before = {value for _, _, value in await find_in_database(ctx, values)}
    assert before == set(values), set(values) - before
    assert {value for _, value in await find_in_valkey(ctx, values)}

    for name in (owner.name, child.name, imported_name):
        await api.DeleteCustomer(pb.DeleteCustomerRequest(name=name, idempotency_key=key()))
    outcome = await clean_up(ctx, JobPolicy(purge_grace_days=0), datetime.now(UTC) + timedelta(1))

    assert await find_in_database(ctx, values) == KEPT
    assert await find_in_valkey(ctx, values) == set()
    # The job erased each once more (DeleteCustomer leaves that pass to it).
    assert "purged 3 deleted customers" in outcome.detail, outcome.detail

    # A late retry of the original create answers the customer it made, as it is now.
    replay = await api.CreateCustomer(create)
    assert replay.name == owner.name and replay.state == pb.CUSTOMER_STATE_DELETED
    assert (replay.username, replay.display_name, replay.email) == ("", "", "")
    assert not replay.dietary.allergies
    assert (await api.GetFamily(pb.GetFamilyRequest(name=family.name))).display_name == ""


async def test_a_replayed_response_about_an_erased_customer_is_what_a_fresh_call_answers(
    api: Stub, ctx: Context
) -> None:
    family = await api.CreateFamily(pb.CreateFamilyRequest(family=pb.Family(display_name="Ro")))
    ana = await api.CreateCustomer(pb.CreateCustomerRequest(
        customer=profile(family.name, "ana", pb.FAMILY_ROLE_OWNER)
    ))  # fmt: skip
    add = pb.AddFavoriteRequest(
        parent=ana.name, favorite=pb.Favorite(drink_id="latte", drink_name=v("fav")),
        idempotency_key=key(),
    )  # fmt: skip
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
            " VALUES ($1, $2, $3, 'M')", cid := uuid.uuid4(), fid, v("led"),
        )  # fmt: skip
        account = await conn.fetchval(
            "INSERT INTO loyalty_accounts (id, customer_id, balance)"
            " VALUES ($1, $2, 5) RETURNING id", uuid.uuid4(), cid,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO loyalty_points (account_id, member_id, kind, points, reason, source,"
            " idempotency_key) VALUES ($1, $2, 'adjust', 5, 'words', 'operator', 'k')",
            account, cid,
        )  # fmt: skip
        for change, erasing in (("reason = 'x'", False), ("points = 6", True),
                                ("reason = 'x', points = 6", True)):  # fmt: skip
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
                " VALUES ($1, $1, 'h', $2)", method, json.dumps(response).encode(),
            )  # fmt: skip
        await conn.execute(
            "INSERT INTO idempotency_keys (key, method, request_hash, response)"
            " VALUES ('d', 'DeleteCustomer', 'h', '')"
        )
        await conn.execute(migrations[11].sql)
        rows = await conn.fetch("SELECT key, customer_id, family_id FROM idempotency_keys")
        assert {r["key"]: (r["customer_id"], r["family_id"]) for r in rows} == {
            "CreateCustomer": (cid, None), "AddFavorite": (cid, None),
            "CreateFamily": (None, fid), "d": (None, None),
        }  # fmt: skip
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
    await api.AdjustPoints(pb.AdjustPointsRequest(
        customer=owner.name, points=300, reason="start", idempotency_key=key()
    ))  # fmt: skip
    await api.SetFamilyWallet(pb.SetFamilyWalletRequest(
        family=family.name, pooled=True, requested_by=owner.name
    ))  # fmt: skip
    # A second adult decides once the child is gone, and reverses the owner's hold.
    adult = await api.CreateCustomer(pb.CreateCustomerRequest(
        customer=profile(family.name, "adult", pb.FAMILY_ROLE_ADULT)
    ))  # fmt: skip
    asked = await api.RedeemReward(pb.RedeemRewardRequest(
        customer=child.name, reward=COFFEE, order_id="o-1", idempotency_key=key()
    ))  # fmt: skip
    held = await api.RedeemReward(pb.RedeemRewardRequest(
        customer=owner.name, reward=COFFEE, order_id="o-2", idempotency_key=key()
    ))  # fmt: skip
    for gone in (owner, child):
        await api.DeleteCustomer(pb.DeleteCustomerRequest(name=gone.name))

    await api.DeclineRedemption(pb.DeclineRedemptionRequest(
        redemption=asked.redemption.name, approver=adult.name, reason=v("latedecline")
    ))  # fmt: skip
    await api.ReverseRedemption(pb.ReverseRedemptionRequest(
        redemption=held.redemption.name, reason=v("latereverse")
    ))  # fmt: skip
    await order_cancelled(ctx, uuid.UUID(owner.name.split("/")[1]))  # reason v("cancel")

    values = [v("latedecline"), v("latereverse"), v("cancel")]
    assert await find_in_database(ctx, values) == set()
    assert await find_in_valkey(ctx, values) == set()
    # A live member's words stay.
    await api.AdjustPoints(pb.AdjustPointsRequest(
        customer=adult.name, points=5, reason=v("kept"), idempotency_key=key()
    ))  # fmt: skip
    assert {x for _, _, x in await find_in_database(ctx, [v("kept")])} == {v("kept")}
