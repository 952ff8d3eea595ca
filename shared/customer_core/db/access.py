"""Which family a customer belongs to, for access checks (ids only)."""

from __future__ import annotations

import uuid

from customer_core.db import Conn

# Deleted customers keep their row and family, so their id still resolves.
FAMILY_OF_CUSTOMER = "SELECT family_id FROM customers WHERE id = $1"

FAMILY_OF_USERNAME = """
SELECT family_id FROM customers WHERE lower(username) = lower($1) AND deleted_at IS NULL
"""


async def family_of_customer(conn: Conn, customer_id: uuid.UUID) -> uuid.UUID | None:
    family: uuid.UUID | None = await conn.fetchval(FAMILY_OF_CUSTOMER, customer_id)
    return family


async def family_of_username(conn: Conn, username: str) -> uuid.UUID | None:
    family: uuid.UUID | None = await conn.fetchval(FAMILY_OF_USERNAME, username)
    return family
