"""Whose cached views a balance change makes stale: the one answer for every path.

A balance is seen by every member of the account it is on: one customer for an
own account, the whole family for a pooled wallet. Every path that moves a
balance (the api's use cases, the consumer's batch, the jobs) asks `viewers`
inside the transaction that moved it, with the accounts it moved, and after
the commit bumps every one of them: `refresh` in the api and the jobs, and in
the consumer the notifier's script, which bumps the generation of every
customer it has a notice for (`notices_for`, so one batch statement, no
per-event round trip). Bumping only the member who earned or spent left the
others' GetOrderContext showing the old balance until the TTL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from customer_core import notices
from customer_core.context import Context
from customer_core.db import Conn
from customer_core.db import loyalty as loyalty_db


async def viewers(conn: Conn, account_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """Every customer who sees these accounts' balances, with their family."""
    return await loyalty_db.account_members(conn, account_ids)


def notices_for(seen_by: dict[uuid.UUID, uuid.UUID]) -> list[notices.Notice]:
    """A points notice per viewer: for the consumer's notifier, which bumps and rings them."""
    changed = frozenset({notices.POINTS})
    return [notices.Notice(c, f, changed) for c, f in sorted(seen_by.items())]


async def refresh(ctx: Context, seen_by: dict[uuid.UUID, uuid.UUID]) -> None:
    """After the commit: bump every viewer's cache and ring their streams."""
    if not seen_by:
        return
    await ctx.cache.invalidate(*sorted(seen_by))
    await notices.publish(ctx.valkey, notices_for(seen_by))
