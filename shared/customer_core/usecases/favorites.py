"""Favorite drinks and the usual order.

Every write locks the customer (so the limit, the positions and the one usual
hold under concurrency), commits with its idempotency record, then bumps the
customer's cache generation and publishes a "favorites" notice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from customer_core import notices
from customer_core.context import Context
from customer_core.db import Conn
from customer_core.db import customers as customers_db
from customer_core.db import favorites as db
from customer_core.domain import names, paging
from customer_core.domain.favorites import (
    MAX_FAVORITES,
    Draft,
    Favorite,
    apply_mask,
    check_draft,
    check_mask,
    check_position,
)
from customer_core.errors import AlreadyExists, LimitExceeded, NotFound
from customer_core.telemetry import timed_query
from customer_core.usecases import idempotency

USUAL_KIND = "usual"


class FavoriteCodec:
    """A favorite as JSON: the stored response of an idempotent call."""

    def encode(self, f: Favorite) -> bytes:
        return json.dumps(
            {
                "id": str(f.id),
                "customer_id": str(f.customer_id),
                "drink_id": f.drink_id,
                "drink_name": f.drink_name,
                "customization": db.customization_to_json(f.customization),
                "position": f.position,
                "is_usual": f.is_usual,
                "create_time": f.create_time.isoformat() if f.create_time else None,
                "update_time": f.update_time.isoformat() if f.update_time else None,
            },
            separators=(",", ":"),
        ).encode()

    def decode(self, raw: bytes) -> Favorite:
        d: dict[str, Any] = json.loads(raw)
        return Favorite(
            id=uuid.UUID(d["id"]),
            customer_id=uuid.UUID(d["customer_id"]),
            drink_id=d["drink_id"],
            drink_name=d["drink_name"],
            customization=db.customization_from_json(d["customization"]),
            position=d["position"],
            is_usual=d["is_usual"],
            create_time=datetime.fromisoformat(d["create_time"]) if d["create_time"] else None,
            update_time=datetime.fromisoformat(d["update_time"]) if d["update_time"] else None,
        )


class _Nothing:
    def encode(self, value: None) -> bytes:
        return b""

    def decode(self, raw: bytes) -> None:
        return None


CODEC = FavoriteCodec()


def _owner(f: Favorite) -> idempotency.Owner:
    return idempotency.Owner(customer_id=f.customer_id)


@dataclass(frozen=True)
class FavoritePage:
    favorites: list[Favorite]
    next_page_token: str


async def _lock(conn: Conn, customer_id: uuid.UUID) -> None:
    if not await db.lock_owner(conn, customer_id):
        raise NotFound(names.customer_name(customer_id))


def _favorite_not_found(customer_id: uuid.UUID, fid: uuid.UUID) -> NotFound:
    return NotFound(names.favorite_name(customer_id, fid))


async def _after_write(ctx: Context, customer_id: uuid.UUID) -> None:
    await ctx.cache.invalidate(customer_id)
    await notices.publish(
        ctx.valkey, [notices.Notice(customer_id, None, frozenset({notices.FAVORITES}))]
    )


async def add_favorite(
    ctx: Context, customer_id: uuid.UUID, draft: Draft, call: idempotency.Call | None
) -> Favorite:
    """Append a favorite; AlreadyExists for a duplicate, LimitExceeded past the limit."""
    d = check_draft(draft)

    async def effect(conn: Conn) -> Favorite:
        await _lock(conn, customer_id)
        if await db.count_favorites(conn, customer_id) >= MAX_FAVORITES:
            raise LimitExceeded(
                f"{names.customer_name(customer_id)} already has {MAX_FAVORITES} favorites, "
                "the most allowed: remove one first"
            )
        added = await db.insert_favorite(
            conn, uuid.uuid4(), customer_id, d.drink_id, d.drink_name, d.customization
        )
        if added is None:
            raise AlreadyExists(
                "favorite: this drink with this customization is already a favorite"
            )
        return added

    with timed_query("favorites.add"):
        favorite, _ = await idempotency.run(ctx.pool, call, effect, CODEC, _owner)
    await _after_write(ctx, customer_id)
    return favorite


async def list_favorites(
    ctx: Context, customer_id: uuid.UUID, size: int, token: str
) -> FavoritePage:
    """In the customer's order (position), keyset-paged."""
    limit = paging.page_size(size)
    query = f"favorites:{customer_id}"
    secret = ctx.settings.page_token_key
    after = paging.decode_token(secret, query, token, (paging.Part.INT64, paging.Part.UUID))
    with timed_query("favorites.list"):
        async with ctx.pool.acquire() as conn:
            customer = await customers_db.fetch_customer(conn, customer_id)
            if customer is None or customer.deleted:
                raise NotFound(names.customer_name(customer_id))
            rows = await db.list_favorites(conn, customer_id, after, limit + 1)
    page, more = rows[:limit], len(rows) > limit
    next_token = (
        paging.encode_token(secret, query, [page[-1].position, str(page[-1].id)]) if more else ""
    )
    return FavoritePage(page, next_token)


async def update_favorite(
    ctx: Context,
    customer_id: uuid.UUID,
    fid: uuid.UUID,
    patch: Draft,
    position: int,
    mask: Sequence[str],
    call: idempotency.Call | None,
) -> Favorite:
    """Rewrite the masked fields; `position` moves the favorite, shifting the others."""
    paths = check_mask(mask)
    if "position" in paths:
        check_position(position)

    async def effect(conn: Conn) -> Favorite:
        await _lock(conn, customer_id)
        current = await db.fetch_favorite(conn, customer_id, fid)
        if current is None:
            raise _favorite_not_found(customer_id, fid)
        drink_paths = [p for p in paths if p != "position"]
        if drink_paths:
            d = check_draft(apply_mask(current, patch, drink_paths))
            await db.update_drink(conn, customer_id, fid, d.drink_id, d.drink_name, d.customization)
        if "position" in paths:
            await db.move_favorite(conn, customer_id, fid, position)
        updated = await db.fetch_favorite(conn, customer_id, fid)
        assert updated is not None  # the owner is locked
        return updated

    with timed_query("favorites.update"):
        favorite, _ = await idempotency.run(ctx.pool, call, effect, CODEC, _owner)
    await _after_write(ctx, customer_id)
    return favorite


async def remove_favorite(
    ctx: Context, customer_id: uuid.UUID, fid: uuid.UUID, call: idempotency.Call | None
) -> None:
    async def effect(conn: Conn) -> None:
        await _lock(conn, customer_id)
        if not await db.delete_favorite(conn, customer_id, fid):
            raise _favorite_not_found(customer_id, fid)

    with timed_query("favorites.remove"):
        await idempotency.run(ctx.pool, call, effect, _Nothing())
    await _after_write(ctx, customer_id)


async def set_usual_order(
    ctx: Context, customer_id: uuid.UUID, fid: uuid.UUID, call: idempotency.Call | None
) -> Favorite:
    """Make the favorite the customer's usual (the previous usual stops being one)."""

    async def effect(conn: Conn) -> Favorite:
        await _lock(conn, customer_id)
        usual = await db.set_usual(conn, customer_id, fid)
        if usual is None:
            raise _favorite_not_found(customer_id, fid)
        return usual

    with timed_query("favorites.set_usual"):
        favorite, _ = await idempotency.run(ctx.pool, call, effect, CODEC, _owner)
    await _after_write(ctx, customer_id)
    return favorite


async def get_usual_order(
    ctx: Context, customer_id: uuid.UUID, encode: Callable[[Favorite], bytes]
) -> bytes:
    """The usual order, encoded by `encode`, through the cache ("Order My Usual" is on
    the Order Service's hot path); NotFound when the customer is unknown, deleted or
    has no usual order, which is not cached. Every favorite write bumps the
    customer's generation (`_after_write`), as for GetOrderContext, which holds it too.
    """
    held = ctx.cache.held(USUAL_KIND, customer_id)
    if held is not None:
        return held

    async def load() -> bytes:
        with timed_query("favorites.get_usual"):
            async with ctx.pool.acquire() as conn:
                customer = await customers_db.fetch_customer(conn, customer_id)
                if customer is None or customer.deleted:
                    raise NotFound(names.customer_name(customer_id))
                usual = await db.fetch_usual(conn, customer_id)
        if usual is None:
            raise NotFound(f"usual order of {names.customer_name(customer_id)}")
        return encode(usual)

    return await ctx.cache.fetch(USUAL_KIND, customer_id, load)
