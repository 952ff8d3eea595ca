"""Set-based reads and writes for ImportCustomers: one statement per step per batch.

Rows go in as parallel arrays through unnest(); per-record arrays (dietary
restrictions, allergies) travel as one text joined by the unit separator
(U+001F, which validation keeps out of every value), since unnest() would
flatten a 2-D array. Preferences are sent as JSON text, encoded once per
distinct value (a file has few distinct preference sets). The reads that plan
a batch: db/import_reads.py.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from typing import Any

from customer_core.db import Conn
from customer_core.db.customers import preferences_to_json
from customer_core.db.favorites import customization_to_json
from customer_core.domain.customers import Preferences, Profile, Role
from customer_core.domain.favorites import Customization
from customer_core.domain.imports import Plan

INSERT_FAMILIES = """
INSERT INTO families (id, display_name, external_id)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])
ON CONFLICT (external_id) DO NOTHING
RETURNING external_id, id
"""

INSERT_CUSTOMERS = """
INSERT INTO customers (id, family_id, username, display_name, email, role, preferences,
                       dietary_restrictions, allergies, external_id)
SELECT u.id, u.family_id, u.username, u.display_name, u.email, u.role, u.preferences,
       string_to_array(u.restrictions, chr(31)), string_to_array(u.allergies, chr(31)),
       u.external_id
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[]::jsonb[], $8::text[], $9::text[], $10::text[])
     AS u(id, family_id, username, display_name, email, role, preferences, restrictions,
          allergies, external_id)
"""

UPDATE_CUSTOMERS = """
UPDATE customers c SET
    username = u.username, display_name = u.display_name, email = u.email, role = u.role,
    preferences = u.preferences,
    dietary_restrictions = string_to_array(u.restrictions, chr(31)),
    allergies = string_to_array(u.allergies, chr(31)),
    update_time = now()
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]::jsonb[],
            $7::text[], $8::text[])
     AS u(id, username, display_name, email, role, preferences, restrictions, allergies)
WHERE c.id = u.id AND c.deleted_at IS NULL
"""

INSERT_ACCOUNTS = """
INSERT INTO loyalty_accounts (id, customer_id)
SELECT gen_random_uuid(), unnest($1::uuid[])
ON CONFLICT (customer_id) DO NOTHING
"""

# New customers' own accounts, each opened with its opening balance in the
# same statement as the ledger entry that makes it: no lock, no separate
# balance UPDATE. The balance is what was actually posted, so an opening key
# already in the ledger (a deleted customer imported again) posts nothing and
# opens the account at 0: the balance still equals the sum of its entries.
# Foreign keys are checked at the end of the statement, when both rows exist.
OPEN_ACCOUNTS = """
WITH posted AS (
    INSERT INTO loyalty_points (account_id, member_id, kind, points, reason, source,
                                source_ref, idempotency_key)
    SELECT t.account_id, t.customer_id, 'adjust', t.points, $6, 'system', t.external_id,
           t.idempotency_key
    FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[])
        AS t(account_id, customer_id, points, external_id, idempotency_key)
    WHERE t.points > 0
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING account_id, points
), opened AS (
    INSERT INTO loyalty_accounts (id, customer_id, balance, lifetime_points, last_activity_at)
    SELECT t.account_id, t.customer_id, coalesce(p.points, 0), coalesce(p.points, 0),
           CASE WHEN p.points IS NOT NULL THEN now() END
    FROM unnest($1::uuid[], $2::uuid[]) AS t(account_id, customer_id)
    LEFT JOIN posted p ON p.account_id = t.account_id
    RETURNING balance
)
SELECT coalesce(sum(balance), 0)::bigint FROM opened
"""

INSERT_FAVORITES = """
INSERT INTO favorites (id, customer_id, drink_id, drink_name, customization,
                       customization_key, position, is_usual)
SELECT gen_random_uuid(), * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]::jsonb[],
                                        $5::text[], $6::integer[], $7::boolean[])
ON CONFLICT (customer_id, drink_id, customization_key) DO NOTHING
"""

# The account each customer's points go to: the family's pooled wallet, else its own.
ACCOUNTS = """
SELECT c.id AS customer_id, coalesce(fa.id, ca.id) AS account_id
FROM customers c
JOIN families f ON f.id = c.family_id
LEFT JOIN loyalty_accounts fa ON f.wallet_pooled AND fa.family_id = f.id
LEFT JOIN loyalty_accounts ca ON ca.customer_id = c.id
WHERE c.id = ANY($1::uuid[])
"""


# An import grows the tables it reads faster than statistics follow; a plan
# cached while they were small (sequential scans) would stay in use. Only for
# the reads: the setting also reaches the foreign key checks PostgreSQL runs
# for every inserted row, and re-planning each of them cost more than the
# writes themselves (56 -> 37 us of PostgreSQL CPU per new record without it).
CUSTOM_PLANS = "SET LOCAL plan_cache_mode = force_custom_plan"
CACHED_PLANS = "SET LOCAL plan_cache_mode TO DEFAULT"


async def prefer_custom_plans(conn: Conn) -> None:
    """Plan each following statement for its parameters (reads of growing tables)."""
    await conn.execute(CUSTOM_PLANS)


async def prefer_cached_plans(conn: Conn) -> None:
    """Back to the server's plan caching (writes, and their per-row foreign key checks)."""
    await conn.execute(CACHED_PLANS)


async def insert_families(
    conn: Conn, families: Sequence[tuple[uuid.UUID, str, str]]
) -> dict[str, tuple[uuid.UUID, bool]]:
    """(id, display name, external id) rows; one already there (a racing import) is kept.

    Returns those inserted, as family_ids does (a new family's wallet is not pooled)."""
    if not families:
        return {}
    rows = await conn.fetch(INSERT_FAMILIES, *map(list, zip(*families, strict=True)))
    return {r["external_id"]: (r["id"], False) for r in rows}


@functools.lru_cache(maxsize=4096)
def _preferences_text(p: Preferences) -> str:
    return json.dumps(preferences_to_json(p), sort_keys=True)


@functools.lru_cache(maxsize=4096)
def _customization_text(c: Customization) -> str:
    return json.dumps(customization_to_json(c))


@functools.lru_cache(maxsize=4096)
def _restrictions_text(restrictions: frozenset[str]) -> str:
    return "\x1f".join(sorted(restrictions))


def _profile_columns(p: Profile) -> tuple[Any, ...]:
    return (
        p.username,
        p.display_name,
        p.email or None,
        (p.role or Role.ADULT).value,
        _preferences_text(p.preferences),
        _restrictions_text(p.dietary.restrictions),
        "\x1f".join(p.dietary.allergies),
    )


async def insert_customers(conn: Conn, plans: Sequence[Plan]) -> None:
    """New customers' rows (their accounts: open_accounts, or accounts_of for a pooled family)."""
    if not plans:
        return
    rows = [
        (p.customer_id, p.family_id, *_profile_columns(p.record.profile), p.record.external_id)
        for p in plans
    ]
    await conn.execute(INSERT_CUSTOMERS, *map(list, zip(*rows, strict=True)))


async def open_accounts(
    conn: Conn, plans: Sequence[Plan], account_ids: Sequence[uuid.UUID], reason: str
) -> int:
    """Open new customers' own accounts with their opening balances; returns the points posted."""
    if not plans:
        return 0
    posted: int = await conn.fetchval(
        OPEN_ACCOUNTS,
        account_ids,
        [p.customer_id for p in plans],
        [p.opening_points for p in plans],
        [p.record.external_id for p in plans],
        [p.record.opening_key for p in plans],
        reason,
    )
    return posted


async def update_customers(conn: Conn, plans: Sequence[Plan]) -> None:
    rows = [(p.customer_id, *_profile_columns(p.record.profile)) for p in plans]
    if rows:
        await conn.execute(UPDATE_CUSTOMERS, *map(list, zip(*rows, strict=True)))


async def insert_favorites(conn: Conn, plans: Sequence[Plan]) -> None:
    rows = [
        (
            p.customer_id,
            f.draft.drink_id,
            f.draft.drink_name,
            _customization_text(f.draft.customization),
            f.key[1],
            position,
            usual,
        )
        for p in plans
        for f, position, usual in p.favorites
    ]
    if rows:
        await conn.execute(INSERT_FAVORITES, *map(list, zip(*rows, strict=True)))


async def accounts_of(
    conn: Conn, customer_ids: Sequence[uuid.UUID], *, create: bool
) -> dict[uuid.UUID, uuid.UUID]:
    """The account each customer's points go to (`create`: make missing own accounts)."""
    if create:
        await conn.execute(INSERT_ACCOUNTS, list(customer_ids))
    rows = await conn.fetch(ACCOUNTS, list(customer_ids))
    return {r["customer_id"]: r["account_id"] for r in rows if r["account_id"] is not None}
