"""Customer profiles: create, read (cache-aside), update with a mask, delete, list.

Every write commits, then bumps the customer's cache generation (so no reader
sees the old profile afterwards) and publishes a "profile" notice. Deletion is
`usecases.erasure`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from customer_core import notices
from customer_core.context import Context
from customer_core.db import Conn
from customer_core.db import customers as db
from customer_core.db import families as families_db
from customer_core.domain import names
from customer_core.domain.customers import (
    Customer,
    Dietary,
    Profile,
    Role,
    apply_mask,
    check_mask,
    check_profile,
)
from customer_core.errors import AlreadyExists, NotFound
from customer_core.telemetry import timed_query
from customer_core.usecases import idempotency

log = logging.getLogger(__name__)

CACHE_KIND = "customer"


class CustomerCodec:
    """A customer as JSON: the stored response of an idempotent call (the GetCustomer
    cache holds the encoded protobuf response instead)."""

    def encode(self, c: Customer) -> bytes:
        return json.dumps(
            {
                "id": str(c.id),
                "family_id": str(c.family_id),
                "username": c.username,
                "display_name": c.display_name,
                "email": c.email,
                "role": c.role.value,
                "preferences": db.preferences_to_json(c.preferences),
                "restrictions": sorted(c.dietary.restrictions),
                "allergies": list(c.dietary.allergies),
                "deleted": c.deleted,
                "external_id": c.external_id,
                "create_time": _iso(c.create_time),
                "update_time": _iso(c.update_time),
            },
            separators=(",", ":"),
        ).encode()

    def decode(self, raw: bytes) -> Customer:
        d: dict[str, Any] = json.loads(raw)
        return Customer(
            id=uuid.UUID(d["id"]),
            family_id=uuid.UUID(d["family_id"]),
            username=d["username"],
            display_name=d["display_name"],
            email=d["email"],
            role=Role(d["role"]),
            preferences=db.preferences_from_json(d["preferences"]),
            dietary=Dietary(frozenset(d["restrictions"]), tuple(d["allergies"])),
            deleted=d["deleted"],
            external_id=d["external_id"],
            create_time=_from_iso(d["create_time"]),
            update_time=_from_iso(d["update_time"]),
        )


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def _from_iso(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s) if s else None


CODEC = CustomerCodec()


def customer_owner(c: Customer) -> idempotency.Owner:
    return idempotency.Owner(customer_id=c.id)


async def _after_write(ctx: Context, c: Customer | None, family_id: uuid.UUID | None) -> None:
    if c is None:
        return
    await ctx.cache.invalidate(c.id)
    await notices.publish(
        ctx.valkey, [notices.Notice(c.id, family_id, frozenset({notices.PROFILE}))]
    )


async def create_customer(
    ctx: Context, family_id: uuid.UUID, profile: Profile, call: idempotency.Call | None
) -> Customer:
    """A new member of an existing family, with its loyalty account."""
    p = check_profile(profile)

    async def effect(conn: Conn) -> Customer:
        if not await families_db.family_exists(conn, family_id):
            raise NotFound(names.family_name(family_id))
        if await db.fetch_customer_by_username(conn, p.username):
            raise AlreadyExists(f"customer.username {p.username!r} is already taken")
        return await db.insert_customer(conn, _from_profile(uuid.uuid4(), family_id, p))

    with timed_query("customers.create"):
        customer, replayed = await idempotency.run(ctx.pool, call, effect, CODEC, customer_owner)
    if not replayed:
        log.info("customer created", extra={"customer_id": str(customer.id)})
    await _after_write(ctx, customer, family_id)
    return customer


def _from_profile(cid: uuid.UUID, family_id: uuid.UUID, p: Profile) -> Customer:
    return Customer(
        id=cid,
        family_id=family_id,
        username=p.username,
        display_name=p.display_name,
        email=p.email or None,
        role=p.role or Role.ADULT,
        preferences=p.preferences,
        dietary=p.dietary,
    )


async def get_customer(
    ctx: Context, customer_id: uuid.UUID, encode: Callable[[Customer], bytes]
) -> bytes:
    """The live customer, encoded by `encode`, through the cache; NotFound when unknown
    or deleted.

    The cache holds the encoded response, so a hit hands back bytes without
    decoding or rebuilding anything (the GetCustomer hot path).
    """
    held = ctx.cache.held(CACHE_KIND, customer_id)
    if held is not None:
        return held

    async def load() -> bytes:
        with timed_query("customers.get"):
            async with ctx.pool.acquire() as conn:
                customer = await db.fetch_customer(conn, customer_id)
        if customer is None or customer.deleted:
            raise NotFound(names.customer_name(customer_id))
        return encode(customer)

    return await ctx.cache.fetch(CACHE_KIND, customer_id, load)


async def get_customer_by_username(ctx: Context, username: str) -> Customer:
    # Not cached: a username can move to another customer, and the cache is
    # keyed (and invalidated) by customer id.
    with timed_query("customers.get_by_username"):
        async with ctx.pool.acquire() as conn:
            customer = await db.fetch_customer_by_username(conn, username)
    if customer is None:
        raise NotFound(f"customer with username {username!r}")
    return customer


async def update_customer(
    ctx: Context,
    customer_id: uuid.UUID,
    patch: Profile,
    mask: Sequence[str],
    call: idempotency.Call | None,
) -> Customer:
    """Write the masked paths of `patch`; every resulting field is validated."""
    check_mask(mask)

    async def effect(conn: Conn) -> Customer:
        current = await db.lock_customer(conn, customer_id)
        if current is None or current.deleted:
            raise NotFound(names.customer_name(customer_id))
        p = check_profile(apply_mask(current, patch, mask), require_role=True)
        if (p.username.lower() != (current.username or "").lower()) and await db.username_taken(
            conn, p.username, customer_id
        ):
            raise AlreadyExists(f"customer.username {p.username!r} is already taken")
        updated = await db.update_customer(conn, _from_profile(customer_id, current.family_id, p))
        assert updated is not None  # the row is locked and live
        return updated

    with timed_query("customers.update"):
        customer, _ = await idempotency.run(ctx.pool, call, effect, CODEC, customer_owner)
    await _after_write(ctx, customer, customer.family_id)
    return customer
