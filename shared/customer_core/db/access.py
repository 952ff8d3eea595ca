"""Which family a customer belongs to, for access checks (ids only)."""

from __future__ import annotations

import uuid

from customer_core.db import Conn

# Deleted customers keep their row and family, so their id still resolves.
FAMILY_OF_CUSTOMER = "SELECT family_id FROM customers WHERE id = $1"

# A member's standing for member-level callers: read on every call, as a role
# can change (only `deleted_at IS NULL` members may act).
MEMBER = "SELECT family_id, role, deleted_at IS NULL AS live FROM customers WHERE id = $1"

# The check and the read in one: the id found here is what the call then reads,
# so a username changing hands cannot slip another family's customer in between.
CUSTOMER_BY_USERNAME = """
SELECT id, family_id FROM customers WHERE lower(username) = lower($1) AND deleted_at IS NULL
"""

FAMILY_OF_USERNAME = """
SELECT family_id FROM customers WHERE lower(username) = lower($1) AND deleted_at IS NULL
"""


async def family_of_customer(conn: Conn, customer_id: uuid.UUID) -> uuid.UUID | None:
    family: uuid.UUID | None = await conn.fetchval(FAMILY_OF_CUSTOMER, customer_id)
    return family


async def family_of_username(conn: Conn, username: str) -> uuid.UUID | None:
    family: uuid.UUID | None = await conn.fetchval(FAMILY_OF_USERNAME, username)
    return family


async def member(conn: Conn, customer_id: uuid.UUID) -> tuple[uuid.UUID, str, bool] | None:
    row = await conn.fetchrow(MEMBER, customer_id)
    return None if row is None else (row["family_id"], row["role"], row["live"])


async def customer_by_username(conn: Conn, username: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    row = await conn.fetchrow(CUSTOMER_BY_USERNAME, username)
    return None if row is None else (row["id"], row["family_id"])
