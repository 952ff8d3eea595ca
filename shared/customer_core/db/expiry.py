"""Point expiry: find inactive accounts with points, a chunk at a time.

The entries themselves go through `db.loyalty.post_entries` (one statement per
chunk), which keeps the ledger invariants in one place.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from customer_core.db import Conn

# Keyset by id so an account whose entry already exists (its key is taken)
# cannot be picked again in the same run. SKIP LOCKED: an account being
# written right now is active, not expiring.
DUE = """
SELECT id, customer_id, balance, coalesce(last_activity_at, create_time) AS active_at
FROM loyalty_accounts
WHERE id > $1 AND balance > 0 AND coalesce(last_activity_at, create_time) < $2
ORDER BY id LIMIT $3
FOR UPDATE SKIP LOCKED
"""


@dataclass(frozen=True)
class DueAccount:
    id: uuid.UUID
    customer_id: uuid.UUID | None
    balance: int
    active_at: datetime


async def lock_due(conn: Conn, after: uuid.UUID, cutoff: datetime, limit: int) -> list[DueAccount]:
    """Up to `limit` accounts after `after` inactive since before `cutoff`, locked."""
    return [DueAccount(**dict(r)) for r in await conn.fetch(DUE, after, cutoff, limit)]
