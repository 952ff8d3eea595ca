"""Customer rows: plain SQL, functions taking a connection.

Preferences live in one jsonb column ({"milk": "oat", "extra_shots": 2, ...},
absent keys meaning "no preference"); dietary restrictions and allergies are
text arrays. A deleted customer keeps its row (id, family, role, timestamps)
so statistics and the points ledger stay keyed by it; its personal data is
erased.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg

from customer_core.db import Conn
from customer_core.domain.customers import Customer, Dietary, Preferences, Role
from customer_core.errors import AlreadyExists

COLUMNS = """
    id, family_id, username, display_name, email, role, preferences,
    dietary_restrictions, allergies, external_id, deleted_at, create_time, update_time
"""

SELECT_BY_ID = f"SELECT {COLUMNS} FROM customers WHERE id = $1"

SELECT_BY_ID_FOR_UPDATE = f"SELECT {COLUMNS} FROM customers WHERE id = $1 FOR UPDATE"

SELECT_BY_USERNAME = f"""
SELECT {COLUMNS} FROM customers
WHERE lower(username) = lower($1) AND deleted_at IS NULL
"""

SELECT_BY_EXTERNAL_ID = f"SELECT {COLUMNS} FROM customers WHERE external_id = $1"

USERNAME_TAKEN = """
SELECT EXISTS (
    SELECT 1 FROM customers WHERE lower(username) = lower($1) AND id <> $2
)
"""

INSERT = f"""
INSERT INTO customers (
    id, family_id, username, display_name, email, role, preferences,
    dietary_restrictions, allergies, external_id
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING {COLUMNS}
"""

UPDATE = f"""
UPDATE customers SET
    username = $2, display_name = $3, email = $4, role = $5, preferences = $6,
    dietary_restrictions = $7, allergies = $8, update_time = now()
WHERE id = $1 AND deleted_at IS NULL
RETURNING {COLUMNS}
"""

# Personal data goes; the row, its id and family stay for anonymised aggregates.
# purged_at stays NULL: the purge job erases once more after the grace period
# (whatever was written while the deletion committed), then sets it.
ERASE = """
UPDATE customers SET
    username = NULL, display_name = NULL, email = NULL, preferences = '{}'::jsonb,
    dietary_restrictions = '{}', allergies = '{}', external_id = NULL,
    deleted_at = now(), update_time = now()
WHERE id = $1 AND deleted_at IS NULL
RETURNING family_id
"""

DELETE_FAVORITES = "DELETE FROM favorites WHERE customer_id = $1"

# Every customer has a loyalty account from the start (balance 0, green).
INSERT_ACCOUNT = """
INSERT INTO loyalty_accounts (id, customer_id) VALUES ($1, $2)
ON CONFLICT (customer_id) DO NOTHING
"""

# Keyset paging in join order: (create_time, id) of the last row returned. One
# statement per shape, so each plan can use its partial index (0007).
LIST_ALL = f"""
SELECT {COLUMNS} FROM customers
WHERE deleted_at IS NULL AND (create_time, id) > ($2::timestamptz, $3::uuid)
ORDER BY create_time, id
LIMIT $1
"""

LIST_FAMILY = f"""
SELECT {COLUMNS} FROM customers
WHERE deleted_at IS NULL AND family_id = $4
  AND (create_time, id) > ($2::timestamptz, $3::uuid)
ORDER BY create_time, id
LIMIT $1
"""

# Sorts before every real row: the first page starts after it.
_START = (datetime(1, 1, 1, tzinfo=UTC), uuid.UUID(int=0))


PREFERENCE_KEYS = ("milk", "size", "temperature", "sweetness", "caffeine")


def preferences_to_json(p: Preferences) -> dict[str, Any]:
    out: dict[str, Any] = {k: getattr(p, k) for k in PREFERENCE_KEYS if getattr(p, k)}
    if p.extra_shots:
        out["extra_shots"] = p.extra_shots
    return out


def preferences_from_json(data: Mapping[str, Any] | None) -> Preferences:
    data = data or {}
    return Preferences(
        milk=data.get("milk"),
        size=data.get("size"),
        temperature=data.get("temperature"),
        sweetness=data.get("sweetness"),
        caffeine=data.get("caffeine"),
        extra_shots=int(data.get("extra_shots", 0)),
    )


def row_to_customer(row: asyncpg.Record | Mapping[str, Any]) -> Customer:
    return Customer(
        id=row["id"],
        family_id=row["family_id"],
        username=row["username"],
        display_name=row["display_name"],
        email=row["email"],
        role=Role(row["role"]),
        preferences=preferences_from_json(row["preferences"]),
        dietary=Dietary(
            restrictions=frozenset(row["dietary_restrictions"] or ()),
            allergies=tuple(row["allergies"] or ()),
        ),
        deleted=row["deleted_at"] is not None,
        external_id=row["external_id"],
        create_time=row["create_time"],
        update_time=row["update_time"],
    )


async def fetch_customer(conn: Conn, customer_id: uuid.UUID) -> Customer | None:
    """The customer, deleted ones included (with deleted=True); None when unknown."""
    row = await conn.fetchrow(SELECT_BY_ID, customer_id)
    return row_to_customer(row) if row else None


async def lock_customer(conn: Conn, customer_id: uuid.UUID) -> Customer | None:
    """Like fetch_customer, holding the row lock until the transaction ends."""
    row = await conn.fetchrow(SELECT_BY_ID_FOR_UPDATE, customer_id)
    return row_to_customer(row) if row else None


async def fetch_customer_by_username(conn: Conn, username: str) -> Customer | None:
    """The live customer with this username (case-insensitive)."""
    row = await conn.fetchrow(SELECT_BY_USERNAME, username)
    return row_to_customer(row) if row else None


async def fetch_customer_by_external_id(conn: Conn, external_id: str) -> Customer | None:
    row = await conn.fetchrow(SELECT_BY_EXTERNAL_ID, external_id)
    return row_to_customer(row) if row else None


async def username_taken(conn: Conn, username: str, by_other_than: uuid.UUID) -> bool:
    return bool(await conn.fetchval(USERNAME_TAKEN, username, by_other_than))


def _params(c: Customer) -> tuple[Any, ...]:
    return (
        c.username,
        c.display_name,
        c.email,
        c.role.value,
        preferences_to_json(c.preferences),
        sorted(c.dietary.restrictions),
        list(c.dietary.allergies),
    )


def _taken(exc: asyncpg.UniqueViolationError, c: Customer) -> AlreadyExists:
    # Two writers can pass the username check at once; the unique index decides.
    if exc.constraint_name == "customers_external_id_key":
        return AlreadyExists(f"customer.external_id {c.external_id!r} is already taken")
    return AlreadyExists(f"customer.username {c.username!r} is already taken")


async def insert_customer(conn: Conn, c: Customer) -> Customer:
    """Insert the customer and its loyalty account; AlreadyExists for a taken username."""
    username, display_name, email, role, prefs, restrictions, allergies = _params(c)
    try:
        async with conn.transaction():
            row = await conn.fetchrow(
                INSERT,
                c.id,
                c.family_id,
                username,
                display_name,
                email,
                role,
                prefs,
                restrictions,
                allergies,
                c.external_id,
            )
    except asyncpg.UniqueViolationError as exc:
        raise _taken(exc, c) from None
    assert row is not None
    await conn.execute(INSERT_ACCOUNT, uuid.uuid4(), c.id)
    return row_to_customer(row)


async def update_customer(conn: Conn, c: Customer) -> Customer | None:
    """Write every updatable field; None when the customer is gone."""
    try:
        async with conn.transaction():
            row = await conn.fetchrow(UPDATE, c.id, *_params(c))
    except asyncpg.UniqueViolationError as exc:
        raise _taken(exc, c) from None
    return row_to_customer(row) if row else None


async def erase_customer(conn: Conn, customer_id: uuid.UUID) -> uuid.UUID | None:
    """Erase personal data and favorites; the family id, or None if not live."""
    family_id: uuid.UUID | None = await conn.fetchval(ERASE, customer_id)
    if family_id is not None:
        await conn.execute(DELETE_FAVORITES, customer_id)
    return family_id


async def list_customers(
    conn: Conn, family_id: uuid.UUID | None, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Customer]:
    """Live customers in join order, after the (create_time, id) key when given."""
    created, last_id = after or _START
    if family_id is None:
        rows = await conn.fetch(LIST_ALL, limit, created, last_id)
    else:
        rows = await conn.fetch(LIST_FAMILY, limit, created, last_id, family_id)
    return [row_to_customer(r) for r in rows]
