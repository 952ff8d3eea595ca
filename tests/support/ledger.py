"""Points posted straight to the ledger, for tests that need a balance to start from."""

from __future__ import annotations

import uuid

from customer_core.context import Context
from customer_core.db import accounts as accounts_db
from customer_core.db import loyalty as db
from customer_core.domain.loyalty import LedgerEntry


async def _post(
    ctx: Context, cid: uuid.UUID, entry: tuple[str, int, str, str, str | None], key: str
) -> None:
    kind, points, reason, source, order_id = entry
    async with ctx.pool.acquire() as conn, conn.transaction():
        account = await accounts_db.account_for_customer(conn, cid)
        assert account is not None
        await db.post_entries(
            conn, [LedgerEntry(account.id, cid, kind, points, reason, source, order_id, None, key)]
        )


async def earn(ctx: Context, cid: uuid.UUID, points: int) -> None:
    """Points earned by an order: they count towards the customer's tier."""
    await _post(ctx, cid, ("earn", points, "order", "order", "o"), f"earn-{uuid.uuid4()}")


async def give(ctx: Context, cid: uuid.UUID, points: int) -> None:
    """Post `points` (an operator adjustment, either sign) to where the customer spends."""
    await _post(ctx, cid, ("adjust", points, "test", "operator", None), f"test:{uuid.uuid4()}")
