"""Loyalty fixtures: customers written straight into the database.

Loyalty tests need customers to exist, not the customers API, so they insert
rows with plain SQL and keep working whatever state that API is in.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest

from customer_core.context import Context

NewCustomer = Callable[..., Awaitable[uuid.UUID]]


@pytest.fixture
def new_customer(ctx: Context) -> NewCustomer:
    """Create a family (or reuse one) and a customer; returns the customer id."""

    async def create(
        *,
        family_id: uuid.UUID | None = None,
        role: str = "adult",
        pooled: bool = False,
        dietary: tuple[str, ...] = (),
        display_name: str = "Ada",
    ) -> uuid.UUID:
        cid = uuid.uuid4()
        async with ctx.pool.acquire() as conn:
            if family_id is None:
                family_id = uuid.uuid4()
                await conn.execute(
                    "INSERT INTO families (id, display_name, wallet_pooled) VALUES ($1, $2, $3)",
                    family_id,
                    "The Lovelaces",
                    pooled,
                )
            await conn.execute(
                "INSERT INTO customers (id, family_id, username, display_name, role,"
                " dietary_restrictions) VALUES ($1, $2, $3, $4, $5, $6)",
                cid,
                family_id,
                f"u{cid.hex[:12]}",
                display_name,
                role,
                list(dietary),
            )
        return cid

    return create


async def family_of(ctx: Context, customer_id: uuid.UUID) -> uuid.UUID:
    """The family a customer made by `new_customer` belongs to."""
    async with ctx.pool.acquire() as conn:
        family: uuid.UUID = await conn.fetchval(
            "SELECT family_id FROM customers WHERE id = $1", customer_id
        )
    return family
