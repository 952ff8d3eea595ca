"""Looking up which family owns a resource, for the api's access checks."""

from __future__ import annotations

import uuid

from customer_core.context import Context
from customer_core.db import access as db
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
