"""The audit log: append a call, list a customer's calls newest first."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from customer_core.db import Conn

INSERT = """
INSERT INTO audit_log (
    caller_kind, caller_subject, caller_family, method, customer_id, family_id,
    outcome, request_id, acting_for
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""

LIST_FOR_CUSTOMER = """
SELECT id, occurred_at, caller_kind, caller_subject, caller_family, method,
       customer_id, family_id, outcome, request_id, acting_for
FROM audit_log
WHERE customer_id = $1 OR acting_for = $1
ORDER BY id DESC
LIMIT $2
"""


@dataclass(frozen=True)
class AuditEntry:
    caller_kind: str
    caller_subject: str
    method: str
    outcome: str
    caller_family: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    family_id: uuid.UUID | None = None
    request_id: str = ""
    occurred_at: datetime | None = None
    # The member the call acted for (approver, requested_by, set_by).
    acting_for: uuid.UUID | None = None


async def insert_entry(conn: Conn, e: AuditEntry) -> None:
    await conn.execute(
        INSERT,
        e.caller_kind,
        e.caller_subject,
        e.caller_family,
        e.method,
        e.customer_id,
        e.family_id,
        e.outcome,
        e.request_id or None,
        e.acting_for,
    )


async def list_for_customer(conn: Conn, customer_id: uuid.UUID, limit: int) -> list[AuditEntry]:
    rows = await conn.fetch(LIST_FOR_CUSTOMER, customer_id, limit)
    return [
        AuditEntry(
            caller_kind=r["caller_kind"],
            caller_subject=r["caller_subject"],
            method=r["method"],
            outcome=r["outcome"],
            caller_family=r["caller_family"],
            customer_id=r["customer_id"],
            family_id=r["family_id"],
            request_id=r["request_id"] or "",
            occurred_at=r["occurred_at"],
            acting_for=r["acting_for"],
        )
        for r in rows
    ]
