"""Erasing a customer: DeleteCustomer, and the purge job's second pass.

Erasure reaches every copy of the customer's personal data: the profile row,
favorites, free-text reasons (ledger entries, approval decisions, cancelled
orders), stored idempotent responses, the cache and the activity streams; and,
when the last live member of a family goes, the family's name. Ids, the ledger's
amounts, statistics and the audit trail stay (docs/security.md lists them).

A replay of a stored response about an erased customer answers what the
resource is now: CreateCustomer and UpdateCustomer the customer as DELETED with
no personal fields, CreateFamily the family without its name; any other stored
response is cleared and its replay is NOT_FOUND naming the customer.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from customer_core import activity_streams, notices
from customer_core.context import Context
from customer_core.db import Conn
from customer_core.db import customers as customers_db
from customer_core.db import erasure as db
from customer_core.db import families as families_db
from customer_core.db import idempotency as idempotency_db
from customer_core.domain import names
from customer_core.errors import NotFound
from customer_core.telemetry import timed_query
from customer_core.usecases import idempotency
from customer_core.usecases.customers import CODEC as CUSTOMER_CODEC
from customer_core.usecases.families import FamilyCodec

log = logging.getLogger(__name__)

# Stored responses replayed as the redacted resource (any other is cleared).
CUSTOMER_METHODS = ("CreateCustomer", "UpdateCustomer")
FAMILY_METHODS = ("CreateFamily",)  # SetFamilyWallet holds the family inside its answer: cleared


async def erase(conn: Conn, customer_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Everything about these (already deleted) customers beyond the profile row, in the
    caller's transaction; returns the families left without live members."""
    customers = [c for c in [await customers_db.fetch_customer(conn, i) for i in customer_ids] if c]
    await db.erase_customer_data(conn, [c.id for c in customers])
    await idempotency_db.erase_customers(
        conn, {c.id: dict.fromkeys(CUSTOMER_METHODS, CUSTOMER_CODEC.encode(c)) for c in customers}
    )
    emptied = await db.empty_families(conn, sorted({c.family_id for c in customers}))
    for fid in emptied:
        family = await families_db.fetch_family(conn, fid)
        assert family is not None
        redacted = FamilyCodec().encode(family)
        await idempotency_db.erase_family(conn, fid, dict.fromkeys(FAMILY_METHODS, redacted))
    return emptied


async def forget(
    ctx: Context,
    customers: Sequence[tuple[uuid.UUID, uuid.UUID | None]],
    emptied: Sequence[uuid.UUID],
) -> None:
    """After the commit: the cached values and activity of (customer, family) pairs."""
    await ctx.cache.forget(*(cid for cid, _ in customers))
    await activity_streams.forget(ctx.valkey, customers, emptied)


async def delete_customer(
    ctx: Context, customer_id: uuid.UUID, call: idempotency.Call | None
) -> None:
    """Erase the customer's personal data everywhere; statistics and the ledger stay, by id."""
    family_id: uuid.UUID | None = None
    emptied: list[uuid.UUID] = []

    async def effect(conn: Conn) -> None:
        nonlocal family_id, emptied
        family_id = await customers_db.erase_customer(conn, customer_id)
        if family_id is None:
            raise NotFound(names.customer_name(customer_id))
        emptied = await erase(conn, [customer_id])

    with timed_query("customers.delete"):
        await idempotency.run(ctx.pool, call, effect, _Nothing())
    # Also on a replay: forgetting twice is harmless, and a lost erasure is not.
    await forget(ctx, [(customer_id, family_id)], emptied)
    if family_id is not None:
        log.info("customer deleted", extra={"customer_id": str(customer_id)})
        await notices.publish(
            ctx.valkey,
            [notices.Notice(customer_id, family_id, frozenset({notices.PROFILE}))],
        )


class _Nothing:
    """The stored response of DeleteCustomer: empty, so it needs no owner."""

    def encode(self, value: None) -> bytes:
        return b""

    def decode(self, raw: bytes) -> None:
        return None
