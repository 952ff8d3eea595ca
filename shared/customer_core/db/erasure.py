"""Erasure beyond the profile row: every other place a customer's own words or a
family's name are kept. Set-based over arrays of customer ids; each statement is
harmless to run twice (the purge job repeats the whole erasure after the grace
period, catching anything written while the deletion committed).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from customer_core.db import Conn

# Also written by the ledger trigger of migration 0011.
ERASED_REASON = "(erased)"

DELETE_FAVORITES = "DELETE FROM favorites WHERE customer_id = ANY($1::uuid[])"

# An adult's reason for a decision on a child's request: the words of the one
# and about the other, so erasing either clears it.
CLEAR_APPROVAL_REASONS = """
UPDATE redemption_approvals SET reason = ''
WHERE (requested_by = ANY($1::uuid[]) OR decided_by = ANY($1::uuid[])) AND reason <> ''
"""

# The ledger's one permitted change (migration 0011): an entry's reason, in a
# transaction that says it is erasing. Kind, points, source and ids stay.
ALLOW_REASON_ERASURE = "SELECT set_config('customer.erasure', 'on', true)"
END_REASON_ERASURE = "SELECT set_config('customer.erasure', 'off', true)"
ERASE_LEDGER_REASONS = """
UPDATE loyalty_points SET reason = $2 WHERE member_id = ANY($1::uuid[]) AND reason <> $2
"""

# The Order Service's cancel reason is free text about the order's customer.
# update_time stays: nothing the roll-ups count changed.
CLEAR_CANCEL_REASONS = """
UPDATE order_history SET cancel_reason = NULL
WHERE customer_id = ANY($1::uuid[]) AND cancel_reason IS NOT NULL
"""
CLEAR_ARCHIVED_CANCEL_REASONS = """
UPDATE order_history_archive SET cancel_reason = NULL
WHERE customer_id = ANY($1::uuid[]) AND cancel_reason IS NOT NULL
"""

# A family whose last live member is gone keeps its id (the ledger, statistics
# and wallet history are keyed by it), not its name or the importer's id for it.
EMPTY_FAMILIES = """
UPDATE families f SET display_name = '', external_id = NULL, update_time = now()
WHERE f.id = ANY($1::uuid[])
  AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.family_id = f.id AND c.deleted_at IS NULL)
RETURNING f.id
"""


async def erase_customer_data(conn: Conn, customer_ids: Sequence[uuid.UUID]) -> None:
    """Everything but the profile row (db.customers) and stored responses (db.idempotency)."""
    ids = list(customer_ids)
    await conn.execute(DELETE_FAVORITES, ids)
    await conn.execute(CLEAR_APPROVAL_REASONS, ids)
    await conn.execute(ALLOW_REASON_ERASURE)
    await conn.execute(ERASE_LEDGER_REASONS, ids, ERASED_REASON)
    await conn.execute(END_REASON_ERASURE)
    await conn.execute(CLEAR_CANCEL_REASONS, ids)
    await conn.execute(CLEAR_ARCHIVED_CANCEL_REASONS, ids)


async def empty_families(conn: Conn, family_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Clear the name of each family without live members; returns those families."""
    return [r["id"] for r in await conn.fetch(EMPTY_FAMILIES, list(family_ids))]
