"""Recording and reading the audit trail."""

from __future__ import annotations

import uuid

from customer_core.context import Context
from customer_core.db import audit as db
from customer_core.db.audit import AuditEntry
from customer_core.telemetry import timed_query

__all__ = ["AuditEntry", "list_customer_audit", "record_call"]


async def record_call(ctx: Context, entry: AuditEntry) -> None:
    with timed_query("audit.record"):
        async with ctx.pool.acquire() as conn:
            await db.insert_entry(conn, entry)


async def list_customer_audit(
    ctx: Context, customer_id: uuid.UUID, limit: int = 100
) -> list[AuditEntry]:
    """Newest first."""
    async with ctx.pool.acquire() as conn:
        return await db.list_for_customer(conn, customer_id, limit)
