"""Looking up which family owns a resource, for the api's access checks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from customer_core.context import Context
from customer_core.db import access as db
from customer_core.domain.customers import Role
from customer_core.telemetry import timed_query


async def family_of_customer(ctx: Context, customer_id: uuid.UUID) -> uuid.UUID | None:
    """The customer's family (deleted customers included); None when unknown."""
    with timed_query("access.family_of_customer"):
        async with ctx.pool.acquire() as conn:
            return await db.family_of_customer(conn, customer_id)


async def family_of_username(ctx: Context, username: str) -> uuid.UUID | None:
    """The family of the live customer with this username; None when unknown."""
    with timed_query("access.family_of_username"):
        async with ctx.pool.acquire() as conn:
            return await db.family_of_username(conn, username)


@dataclass(frozen=True)
class Member:
    customer_id: uuid.UUID
    family_id: uuid.UUID
    role: Role
    live: bool


async def member(ctx: Context, customer_id: uuid.UUID) -> Member | None:
    """The customer's family, role and whether it is live; None when unknown."""
    with timed_query("access.member"):
        async with ctx.pool.acquire() as conn:
            found = await db.member(conn, customer_id)
    if found is None:
        return None
    family_id, role, live = found
    return Member(customer_id, family_id, Role(role), live)


async def customer_by_username(ctx: Context, username: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(customer id, family id) of the live customer with this username."""
    with timed_query("access.customer_by_username"):
        async with ctx.pool.acquire() as conn:
            return await db.customer_by_username(conn, username)
