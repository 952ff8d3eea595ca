"""Points a reversal still owes: recorded when the family's points were held, taken
back when a redemption returns them. Plain SQL; nothing here commits.

`customer_core.db.redemptions` calls `collect` after every redemption refund it
posts and posts what comes back (this module never posts, so it imports no
ledger code).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from customer_core.db import Conn
from customer_core.domain.loyalty import LedgerEntry
from customer_core.domain.rewards import Redemption

RECORD = """
INSERT INTO points_owed (idempotency_key, member_id, order_id, source, campaign_id, points)
SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::bigint[])
ON CONFLICT (idempotency_key) DO NOTHING
"""

# What the family of each refunded account owes, oldest debt first, locked.
OWED_TO = """
SELECT r.rid, r.account_id, o.idempotency_key, o.member_id, o.order_id, o.source,
       o.campaign_id, o.points
FROM unnest($1::uuid[], $2::uuid[]) AS r(rid, account_id)
JOIN points_owed o ON o.points > 0 AND o.member_id IN (
    SELECT m.id FROM loyalty_accounts a
    LEFT JOIN customers own ON own.id = a.customer_id
    JOIN customers m ON m.family_id = coalesce(a.family_id, own.family_id)
    WHERE a.id = r.account_id
)
ORDER BY o.create_time, o.idempotency_key, r.rid
FOR UPDATE OF o
"""

PAY = """
UPDATE points_owed o SET points = o.points - t.paid
FROM unnest($1::text[], $2::bigint[]) AS t(k, paid) WHERE o.idempotency_key = t.k
"""


@dataclass(frozen=True)
class Owed:
    idempotency_key: str  # the earn entry's
    member_id: uuid.UUID
    order_id: str
    source: str
    campaign_id: uuid.UUID | None
    points: int


async def record(conn: Conn, owed: Sequence[Owed]) -> None:
    if owed:
        columns = [[getattr(o, f) for o in owed] for f in Owed.__dataclass_fields__]
        await conn.execute(RECORD, *columns)


async def collect(conn: Conn, refunded: Sequence[Redemption]) -> list[LedgerEntry]:
    """The `reverse` entries that take what is owed out of the points the refunds
    brought back (each refund gives at most its own points); the debts are paid
    down now, so the caller must post the entries in the same transaction."""
    if not refunded:
        return []
    rows = await conn.fetch(OWED_TO, [r.id for r in refunded], [r.account_id for r in refunded])
    if not rows:
        return []
    left = {r.id: r.points for r in refunded}
    owed = {row["idempotency_key"]: row["points"] for row in rows}
    paid: dict[str, int] = {}
    entries: list[LedgerEntry] = []
    for row in rows:
        key, rid = row["idempotency_key"], row["rid"]
        take = min(owed[key], left[rid])
        if take <= 0:
            continue
        owed[key] -= take
        left[rid] -= take
        paid[key] = paid.get(key, 0) + take
        entries.append(
            LedgerEntry(
                account_id=row["account_id"],
                member_id=row["member_id"],
                kind="reverse",
                points=-take,
                reason=f"order {row['order_id']} cancelled",
                source=row["source"],
                source_ref=row["order_id"],
                campaign_id=row["campaign_id"],
                idempotency_key=f"{key}:reverse:owed:{rid}",
            )
        )
    if paid:
        await conn.execute(PAY, list(paid), list(paid.values()))
    return entries
