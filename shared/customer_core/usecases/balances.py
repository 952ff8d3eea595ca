"""Whose cached views a balance change makes stale: the one answer for every path.

A balance is seen by every member of the account it is on: one customer for an
own account, the whole family for a pooled wallet (the rule is one SQL
fragment, db.loyalty.VIEWERS_OF_MOVED). Every path that moves a balance asks
for them inside the transaction that moved it and, after the commit, bumps
every one: the api's use cases and the jobs through `viewers` and
`ctx.cache.invalidate` (or `refresh`); the consumer's batch gets them from its
account lock statement (no round trip of its own) and gives each a points
notice, and the notifier's script bumps the generation of every customer it
has a notice for. Bumping only the member who earned or spent left the others'
GetOrderContext showing the old balance until the TTL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

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


async def refresh(
    ctx: Context,
    seen_by: dict[uuid.UUID, uuid.UUID],
    activities: Sequence[notices.Activity] = (),
) -> None:
    """After the commit: bump every viewer's cache and ring their streams (with `activities`)."""
    if seen_by:
        await ctx.cache.invalidate(*sorted(seen_by))
    await notices.publish(ctx.valkey, notices_for(seen_by), activities)
