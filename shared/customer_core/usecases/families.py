"""Families: create, read, list members."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from customer_core.context import Context
from customer_core.db import customers as customers_db
from customer_core.db import families as db
from customer_core.domain import names, paging
from customer_core.domain.customers import Customer, Family, check_family_name
from customer_core.errors import NotFound
from customer_core.telemetry import timed_query
from customer_core.usecases import idempotency

log = logging.getLogger(__name__)


class FamilyCodec:
    """A family as the stored response of an idempotent CreateFamily."""

    def encode(self, f: Family) -> bytes:
        return json.dumps(
            {
                "id": str(f.id),
                "display_name": f.display_name,
                "wallet_pooled": f.wallet_pooled,
                "member_count": f.member_count,
                "external_id": f.external_id,
                "create_time": f.create_time.isoformat() if f.create_time else None,
                "update_time": f.update_time.isoformat() if f.update_time else None,
            }
        ).encode()

    def decode(self, raw: bytes) -> Family:
        d: dict[str, Any] = json.loads(raw)
        return Family(
            id=uuid.UUID(d["id"]),
            display_name=d["display_name"],
            wallet_pooled=d["wallet_pooled"],
            member_count=d["member_count"],
            external_id=d["external_id"],
            create_time=datetime.fromisoformat(d["create_time"]) if d["create_time"] else None,
            update_time=datetime.fromisoformat(d["update_time"]) if d["update_time"] else None,
        )


def family_owner(f: Family) -> idempotency.Owner:
    return idempotency.Owner(family_id=f.id)


async def create_family(ctx: Context, display_name: str, call: idempotency.Call | None) -> Family:
    display_name = check_family_name(display_name)

    async def effect(conn: Any) -> Family:
        return await db.insert_family(conn, uuid.uuid4(), display_name)

    with timed_query("families.create"):
        family, replayed = await idempotency.run(
            ctx.pool, call, effect, FamilyCodec(), family_owner
        )
    if not replayed:
        log.info("family created", extra={"family_id": str(family.id)})
    return family


async def get_family(ctx: Context, family_id: uuid.UUID) -> Family:
    with timed_query("families.get"):
        async with ctx.pool.acquire() as conn:
            family = await db.fetch_family(conn, family_id)
    if family is None:
        raise NotFound(names.family_name(family_id))
    return family


@dataclass(frozen=True)
class Page:
    customers: list[Customer]
    next_page_token: str


async def list_customers(
    ctx: Context,
    family_id: uuid.UUID | None,
    page_size: int,
    page_token: str,
    *,
    require_family: bool = False,
) -> Page:
    """Live customers in join order, optionally of one family, one page at a time."""
    size = paging.page_size(page_size)
    query = f"customers?family={family_id or ''}"
    secret = ctx.settings.page_token_key
    after = paging.decode_token(secret, query, page_token, (paging.Part.TIME, paging.Part.UUID))
    with timed_query("customers.list"):
        async with ctx.pool.acquire() as conn, conn.transaction(readonly=True):
            if require_family and family_id and not await db.family_exists(conn, family_id):
                raise NotFound(names.family_name(family_id))
            rows = await customers_db.list_customers(conn, family_id, after, size + 1)
    token = ""
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        assert last.create_time is not None
        token = paging.encode_token(secret, query, [last.create_time.isoformat(), str(last.id)])
    return Page(rows, token)
