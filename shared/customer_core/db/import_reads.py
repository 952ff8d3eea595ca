"""The reads that plan an ImportCustomers batch: families, customers and usernames by key.

The keys travel as one text joined by the unit separator (U+001F, which
validation keeps out of external ids and usernames), split by PostgreSQL:
asyncpg inspects each element of an array it encodes, which cost the api more
than the look-up. The reads run with custom plans (db.imports.prefer_custom_plans),
so the split text is a constant to the planner and the indexes are used.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from typing import Any

from customer_core.db import Conn
from customer_core.db.customers import preferences_from_json
from customer_core.domain.customers import Dietary, Preferences, Profile, Role
from customer_core.domain.imports import Existing

FAMILIES_BY_EXTERNAL_ID = """
SELECT external_id, id, wallet_pooled FROM families
WHERE external_id = ANY(string_to_array($1::text, chr(31)))
"""

# Live customers only: DeleteCustomer clears external_id, so a deleted person
# imported again is a new customer. Liveness is returned, not filtered on: a
# `deleted_at IS NULL` condition let the planner, with statistics lagging
# behind the import, AND the external id look-up with a scan of the whole
# live-customers index (customers_list_idx), once per batch. Likewise the
# opening key is probed per row (a scalar subquery), never by hashing the
# whole ledger.
EXISTING = """
SELECT c.id, c.external_id, c.family_id, c.username, c.display_name, c.email, c.role,
       c.deleted_at IS NULL AS live,
       c.preferences::text AS preferences, c.dietary_restrictions, c.allergies,
       coalesce(f.keys, '{}') AS favorite_keys, coalesce(f.next_position, 0) AS next_position,
       coalesce(f.has_usual, false) AS has_usual,
       (SELECT true FROM loyalty_points p
        WHERE p.idempotency_key = 'import:' || c.external_id || ':opening' LIMIT 1) IS NOT NULL
           AS opening_posted
FROM customers c
LEFT JOIN LATERAL (
    SELECT array_agg(drink_id || chr(31) || customization_key) AS keys,
           max(position) + 1 AS next_position, bool_or(is_usual) AS has_usual
    FROM favorites WHERE customer_id = c.id
) f ON true
WHERE c.external_id = ANY(string_to_array($1::text, chr(31)))
"""

# Who holds each username (case-insensitive), and under which external id.
USERNAME_HOLDERS = """
SELECT lower(username) AS username, external_id FROM customers
WHERE lower(username) = ANY(string_to_array($1::text, chr(31)))
"""


async def family_ids(conn: Conn, external_ids: Sequence[str]) -> dict[str, tuple[uuid.UUID, bool]]:
    """External id -> (family id, whether its wallet is pooled)."""
    rows = await conn.fetch(FAMILIES_BY_EXTERNAL_ID, "\x1f".join(external_ids))
    return {r["external_id"]: (r["id"], r["wallet_pooled"]) for r in rows}


@functools.lru_cache(maxsize=4096)
def _preferences_from_text(text: str) -> Preferences:
    # Read as text: a file's few distinct preference sets are decoded once each.
    return preferences_from_json(json.loads(text))


def _existing(row: Any) -> Existing:
    keys = frozenset(tuple(k.split("\x1f", 1)) for k in row["favorite_keys"])
    profile = Profile(
        username=row["username"] or "",
        display_name=row["display_name"] or "",
        email=row["email"] or "",
        role=Role(row["role"]),
        preferences=_preferences_from_text(row["preferences"]),
        dietary=Dietary(
            restrictions=frozenset(row["dietary_restrictions"] or ()),
            allergies=tuple(row["allergies"] or ()),
        ),
    )
    return Existing(
        customer_id=row["id"],
        family_id=row["family_id"],
        profile=profile,
        favorite_keys=keys,  # type: ignore[arg-type]
        next_position=row["next_position"],
        has_usual=row["has_usual"],
        opening_posted=row["opening_posted"],
    )


async def existing_customers(conn: Conn, external_ids: Sequence[str]) -> dict[str, Existing]:
    rows = await conn.fetch(EXISTING, "\x1f".join(external_ids))
    return {r["external_id"]: _existing(r) for r in rows if r["live"]}


async def username_holders(conn: Conn, usernames: Sequence[str]) -> dict[str, str | None]:
    """lower(username) -> the external id of the customer holding it (None: not imported)."""
    rows = await conn.fetch(USERNAME_HOLDERS, "\x1f".join([u.lower() for u in usernames]))
    return {r["username"]: r["external_id"] for r in rows}
