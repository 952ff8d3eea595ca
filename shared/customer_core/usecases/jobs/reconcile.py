"""Reconciliation: report what does not add up; repair nothing.

All checks read one snapshot (repeatable read), so a write landing between
two checks cannot show up as a difference.
"""

from __future__ import annotations

from datetime import datetime

from customer_core.context import Context
from customer_core.db import reconcile as db
from customer_core.domain.jobs import Finding, JobOutcome, JobPolicy


async def reconcile(ctx: Context, policy: JobPolicy, now: datetime) -> JobOutcome:
    findings: list[Finding] = []
    async with (
        ctx.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        for check in db.CHECKS:
            count, ids = await db.find(conn, check, policy.report_limit)
            findings.append(Finding(check, count, tuple(ids)))
    total = sum(f.count for f in findings)
    detail = ", ".join(f"{f.check}={f.count}" for f in findings)
    return JobOutcome(total, detail, tuple(findings))
