"""Family rows: plain SQL, functions taking a connection."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg

from customer_core.db import Conn
from customer_core.domain.customers import Family

# member_count counts live members only: a deleted customer has left the family.
COLUMNS = """
    f.id, f.display_name, f.external_id, f.wallet_pooled, f.create_time, f.update_time,
    (SELECT count(*) FROM customers c
     WHERE c.family_id = f.id AND c.deleted_at IS NULL) AS member_count
"""

SELECT_BY_ID = f"SELECT {COLUMNS} FROM families f WHERE f.id = $1"

SELECT_BY_EXTERNAL_ID = f"SELECT {COLUMNS} FROM families f WHERE f.external_id = $1"

EXISTS = "SELECT EXISTS (SELECT 1 FROM families WHERE id = $1)"

INSERT = """
INSERT INTO families (id, display_name, external_id)
VALUES ($1, $2, $3)
RETURNING id
"""


def row_to_family(row: asyncpg.Record | Mapping[str, Any]) -> Family:
    return Family(
        id=row["id"],
        display_name=row["display_name"],
        wallet_pooled=row["wallet_pooled"],
        member_count=int(row["member_count"]),
        external_id=row["external_id"],
        create_time=row["create_time"],
        update_time=row["update_time"],
    )


async def fetch_family(conn: Conn, family_id: uuid.UUID) -> Family | None:
    row = await conn.fetchrow(SELECT_BY_ID, family_id)
    return row_to_family(row) if row else None


async def fetch_family_by_external_id(conn: Conn, external_id: str) -> Family | None:
    row = await conn.fetchrow(SELECT_BY_EXTERNAL_ID, external_id)
    return row_to_family(row) if row else None


async def family_exists(conn: Conn, family_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval(EXISTS, family_id))


async def insert_family(
    conn: Conn, family_id: uuid.UUID, display_name: str, external_id: str | None = None
) -> Family:
    await conn.execute(INSERT, family_id, display_name, external_id)
    family = await fetch_family(conn, family_id)
    assert family is not None
    return family
