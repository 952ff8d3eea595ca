"""Favorite rows: plain SQL, functions taking a connection.

Positions are dense (0..n-1) per customer: adding appends, removing closes
the gap, moving shifts the favorites in between. Writers lock the owner first
(`lock_owner`), so concurrent writes for one customer run one at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg

from customer_core.db import Conn
from customer_core.domain.favorites import Customization, Favorite, customization_key
from customer_core.errors import AlreadyExists

COLUMNS = """
    id, customer_id, drink_id, drink_name, customization, position, is_usual,
    create_time, update_time
"""

# FOR NO KEY UPDATE conflicts with itself but not with the key-share lock
# that inserting a favorite takes on its customer through the foreign key.
LOCK_OWNER = "SELECT deleted_at IS NULL FROM customers WHERE id = $1 FOR NO KEY UPDATE"

COUNT = "SELECT count(*) FROM favorites WHERE customer_id = $1"

INSERT = f"""
INSERT INTO favorites (id, customer_id, drink_id, drink_name, customization,
                       customization_key, position)
VALUES ($1, $2, $3, $4, $5, $6,
        (SELECT coalesce(max(position) + 1, 0) FROM favorites WHERE customer_id = $2))
ON CONFLICT (customer_id, drink_id, customization_key) DO NOTHING
RETURNING {COLUMNS}
"""

SELECT_ONE = f"SELECT {COLUMNS} FROM favorites WHERE customer_id = $1 AND id = $2"

SELECT_USUAL = f"SELECT {COLUMNS} FROM favorites WHERE customer_id = $1 AND is_usual"

LIST = f"""
SELECT {COLUMNS} FROM favorites
WHERE customer_id = $1 AND ($2::integer IS NULL OR (position, id) > ($2::integer, $3::uuid))
ORDER BY position, id
LIMIT $4
"""

UPDATE_DRINK = f"""
UPDATE favorites SET drink_id = $3, drink_name = $4, customization = $5,
                     customization_key = $6, update_time = now()
WHERE customer_id = $1 AND id = $2
RETURNING {COLUMNS}
"""

# Move one favorite to `$3` (clamped to the last position), shifting those in between.
MOVE = """
WITH cur AS (
    SELECT position AS old FROM favorites WHERE customer_id = $1 AND id = $2
), tgt AS (
    SELECT least($3, (SELECT count(*) - 1 FROM favorites WHERE customer_id = $1))::integer AS new
)
UPDATE favorites f SET
    position = CASE
        WHEN f.id = $2 THEN tgt.new
        WHEN cur.old < tgt.new THEN f.position - 1
        ELSE f.position + 1
    END,
    update_time = now()
FROM cur, tgt
WHERE f.customer_id = $1 AND cur.old <> tgt.new
  AND (f.id = $2 OR f.position BETWEEN least(cur.old, tgt.new) AND greatest(cur.old, tgt.new))
"""

DELETE = "DELETE FROM favorites WHERE customer_id = $1 AND id = $2 RETURNING position"
CLOSE_GAP = """
UPDATE favorites SET position = position - 1 WHERE customer_id = $1 AND position > $2
"""

# Two statements: a unique index is checked row by row, so the old usual must
# be cleared before the new one is set.
CLEAR_USUAL = """
UPDATE favorites SET is_usual = false, update_time = now()
WHERE customer_id = $1 AND is_usual AND id <> $2
"""
SET_USUAL = f"""
UPDATE favorites SET is_usual = true, update_time = now()
WHERE customer_id = $1 AND id = $2
RETURNING {COLUMNS}
"""


def customization_to_json(c: Customization) -> dict[str, Any]:
    out: dict[str, Any] = {"shots": c.shots, "syrups": list(c.syrups), "notes": c.notes}
    for key in ("size", "milk", "temperature"):
        if getattr(c, key):
            out[key] = getattr(c, key)
    return out


def customization_from_json(data: Mapping[str, Any] | None) -> Customization:
    data = data or {}
    return Customization(
        size=data.get("size"),
        milk=data.get("milk"),
        shots=int(data.get("shots", 0)),
        syrups=tuple(data.get("syrups", ())),
        temperature=data.get("temperature"),
        notes=data.get("notes", ""),
    )


def row_to_favorite(row: asyncpg.Record) -> Favorite:
    return Favorite(
        id=row["id"],
        customer_id=row["customer_id"],
        drink_id=row["drink_id"],
        drink_name=row["drink_name"],
        customization=customization_from_json(row["customization"]),
        position=row["position"],
        is_usual=row["is_usual"],
        create_time=row["create_time"],
        update_time=row["update_time"],
    )


async def lock_owner(conn: Conn, customer_id: uuid.UUID) -> bool:
    """Lock the customer for a favorites write; False when unknown or deleted."""
    return bool(await conn.fetchval(LOCK_OWNER, customer_id))


async def count_favorites(conn: Conn, customer_id: uuid.UUID) -> int:
    return int(await conn.fetchval(COUNT, customer_id))


async def insert_favorite(
    conn: Conn,
    fid: uuid.UUID,
    customer_id: uuid.UUID,
    drink_id: str,
    drink_name: str,
    customization: Customization,
) -> Favorite | None:
    """Append a favorite; None when the same drink and customisation is already there."""
    row = await conn.fetchrow(
        INSERT,
        fid,
        customer_id,
        drink_id,
        drink_name,
        customization_to_json(customization),
        customization_key(customization),
    )
    return row_to_favorite(row) if row else None


async def fetch_favorite(conn: Conn, customer_id: uuid.UUID, fid: uuid.UUID) -> Favorite | None:
    row = await conn.fetchrow(SELECT_ONE, customer_id, fid)
    return row_to_favorite(row) if row else None


async def fetch_usual(conn: Conn, customer_id: uuid.UUID) -> Favorite | None:
    row = await conn.fetchrow(SELECT_USUAL, customer_id)
    return row_to_favorite(row) if row else None


async def list_favorites(
    conn: Conn, customer_id: uuid.UUID, after: tuple[int, uuid.UUID] | None, limit: int
) -> list[Favorite]:
    position, fid = after if after else (None, None)
    rows = await conn.fetch(LIST, customer_id, position, fid, limit)
    return [row_to_favorite(r) for r in rows]


async def update_drink(
    conn: Conn,
    customer_id: uuid.UUID,
    fid: uuid.UUID,
    drink_id: str,
    drink_name: str,
    customization: Customization,
) -> Favorite | None:
    """Rewrite the drink; AlreadyExists when it now duplicates another favorite."""
    try:
        row = await conn.fetchrow(
            UPDATE_DRINK,
            customer_id,
            fid,
            drink_id,
            drink_name,
            customization_to_json(customization),
            customization_key(customization),
        )
    except asyncpg.UniqueViolationError:
        raise AlreadyExists(
            "favorite: this drink with this customization is already a favorite"
        ) from None
    return row_to_favorite(row) if row else None


async def move_favorite(conn: Conn, customer_id: uuid.UUID, fid: uuid.UUID, position: int) -> None:
    await conn.execute(MOVE, customer_id, fid, position)


async def delete_favorite(conn: Conn, customer_id: uuid.UUID, fid: uuid.UUID) -> bool:
    position = await conn.fetchval(DELETE, customer_id, fid)
    if position is None:
        return False
    await conn.execute(CLOSE_GAP, customer_id, position)
    return True


async def set_usual(conn: Conn, customer_id: uuid.UUID, fid: uuid.UUID) -> Favorite | None:
    """Make `fid` the one usual favorite; None when it does not exist."""
    await conn.execute(CLEAR_USUAL, customer_id, fid)
    row = await conn.fetchrow(SET_USUAL, customer_id, fid)
    return row_to_favorite(row) if row else None
