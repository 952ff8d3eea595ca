"""Searching the whole database and Valkey for personal values, and writing them:
the erasure tests' tools."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

from customer_core.context import Context
from customer_core.domain.order_events import Cancelled, Item, OrderEvent, Placed, Topic
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from customer_core.usecases.events import Incoming, apply_batch

Stub = customer_pb2_grpc.CustomerServiceStub
COFFEE = "rewards/5eed0000-0000-4000-8000-000000000002"  # 100 points

TOKEN = uuid.uuid4().hex[:8]


def v(label: str) -> str:
    """A value no other data contains: lower-case ASCII, so JSON and protobuf keep it as is."""
    return f"zq{label}{TOKEN}"


def key() -> str:
    return str(uuid.uuid4())


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
