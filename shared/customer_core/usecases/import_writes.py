"""ImportCustomers' writes: one batch of checked records, set-based, in one transaction.

A batch is written in one transaction; if a unique index refuses it (another
writer took a username, or a concurrent import of the same file created the
same external id) it is rolled back and written again one record per
transaction, so only the record in conflict is rejected.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence

import asyncpg
from asyncpg.pgproto.pgproto import UUID as PgUUID

from customer_core import notices
from customer_core.context import Context
from customer_core.db import Conn
from customer_core.db import import_reads as reads
from customer_core.db import imports as db
from customer_core.db.loyalty import POINTS_EARNED, post_entries
from customer_core.domain.imports import BatchOutcome, ImportRecord, Plan, plan, rejection
from customer_core.domain.loyalty import LedgerEntry
from customer_core.errors import InvalidArgument
from customer_core.telemetry import timed_query
from customer_core.usecases import balances

log = logging.getLogger(__name__)

OPENING_REASON = "opening balance (import)"


async def write_batch(ctx: Context, records: Sequence[ImportRecord]) -> BatchOutcome:
    """Write one batch (unique external ids and usernames) and publish what changed."""
    async with ctx.pool.acquire() as conn:
        try:
            outcome, changed = await _write_retrying(conn, records)
        except asyncpg.UniqueViolationError:
            outcome, changed = BatchOutcome(), []
            for r in records:
                try:
                    async with conn.transaction():
                        one, ids = await _write(conn, [r])
                except asyncpg.UniqueViolationError as exc:
                    one, ids = BatchOutcome(), []
                    one.rejections.append(rejection(r.position, r.external_id, _taken(exc, r)))
                _merge(outcome, one)
                changed += ids
    if changed:
        # Profiles and balances changed under cached values and open watches.
        await ctx.cache.invalidate(*changed)
        await notices.publish(
            ctx.valkey,
            [
                notices.Notice(c, None, frozenset({notices.PROFILE, notices.POINTS}))
                for c in changed
            ],
        )
    return outcome


async def _write_retrying(
    conn: Conn, records: Sequence[ImportRecord]
) -> tuple[BatchOutcome, list[uuid.UUID]]:
    # Two batches in flight can deadlock on rows both create (a family at a
    # batch boundary, a pooled wallet); PostgreSQL breaks the tie, we retry.
    for attempt in range(3):
        try:
            with timed_query("imports.batch"):
                async with conn.transaction():
                    return await _write(conn, records)
        except asyncpg.DeadlockDetectedError:
            if attempt == 2:
                raise
            log.info("import batch deadlocked; retrying", extra={"records": len(records)})
    raise AssertionError("unreachable")


_VERSION_4 = bytes(b & 0x0F | 0x40 for b in range(256))
_RFC_4122 = bytes(b & 0x3F | 0x80 for b in range(256))


def new_ids(n: int) -> list[uuid.UUID]:
    """`n` random (version 4) UUIDs from one read of the system's random source."""
    raw = bytearray(os.urandom(16 * n))
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_RFC_4122)
    ids = bytes(raw)
    # asyncpg's UUID (a uuid.UUID) is built in C: 0.07 µs against 0.69 for
    # uuid.UUID(bytes=...), and asyncpg sends it without converting it again.
    return [PgUUID(ids[i : i + 16]) for i in range(0, 16 * n, 16)]


def _taken(exc: asyncpg.UniqueViolationError, r: ImportRecord) -> InvalidArgument:
    if exc.constraint_name == "customers_username_key":
        return InvalidArgument("username", f"{r.profile.username!r} is already taken")
    return InvalidArgument("external_id", "was written by another import at the same time; retry")


def _merge(into: BatchOutcome, one: BatchOutcome) -> None:
    into.created += one.created
    into.updated += one.updated
    into.unchanged += one.unchanged
    into.rejections += one.rejections


async def _write(
    conn: Conn, records: Sequence[ImportRecord]
) -> tuple[BatchOutcome, list[uuid.UUID]]:
    """The batch's writes, set-based; returns the outcome and the existing customers changed."""
    outcome = BatchOutcome()
    await db.prefer_custom_plans(conn)
    families, records = await _families(conn, records, outcome)
    existing = await reads.existing_customers(conn, [r.external_id for r in records])
    holders = await reads.username_holders(conn, [r.username_key for r in records])
    fresh = iter(new_ids(len(records) - len(existing)))
    # One pass sorts the plans by what they write (this loop is per record).
    created: list[Plan] = []
    pooled: list[Plan] = []  # created in a family whose wallet is pooled
    changed: list[Plan] = []  # existing, updated
    unchanged = 0
    for r in records:
        holder = holders.get(r.username_key, r.external_id)
        try:
            if holder != r.external_id:
                raise InvalidArgument("username", f"{r.profile.username!r} is already taken")
            family_id, family_pooled = families[r.family_external_id]
            known = existing.get(r.external_id)
            p = plan(r, family_id, known, known.customer_id if known else next(fresh))
        except InvalidArgument as exc:
            outcome.rejections.append(rejection(r.position, r.external_id, exc))
            continue
        if known is None:
            created.append(p)
            if family_pooled:
                pooled.append(p)
        elif p.outcome == "updated":
            changed.append(p)
        else:
            unchanged += 1
    await db.prefer_cached_plans(conn)
    # A member of a pooled family spends from the family's wallet: its own
    # account opens empty and its opening balance goes to the wallet.
    own = (
        [p for p in created if not families[p.record.family_external_id][1]] if pooled else created
    )
    await db.insert_customers(conn, created)
    opened = await db.open_accounts(conn, own, new_ids(len(own)), OPENING_REASON)
    if opened:
        POINTS_EARNED.labels("system").inc(opened)
    await db.update_customers(conn, [p for p in changed if p.write_profile])
    await db.insert_favorites(conn, [*created, *changed])
    moved = await _post_openings(conn, [p for p in changed if p.opening_points > 0], pooled)
    outcome.created = len(created)
    outcome.updated = len(changed)
    outcome.unchanged = unchanged
    # An opening into a pooled wallet changes what every member of it sees.
    stale = {p.customer_id for p in changed}
    stale |= set(await balances.viewers(conn, moved))
    return outcome, sorted(stale)


async def _families(
    conn: Conn, records: Sequence[ImportRecord], outcome: BatchOutcome
) -> tuple[dict[str, tuple[uuid.UUID, bool]], list[ImportRecord]]:
    """(Family id, wallet pooled) by external id, creating the families seen for the first
    time; and the records whose family is now known.

    A record naming a new family without a display name is rejected (and so
    are the batch's other records for that family, unless one names it).
    """
    wanted: dict[str, str] = {}  # the first display name given (empty: none yet)
    for r in records:
        if not wanted.get(r.family_external_id):
            wanted[r.family_external_id] = r.family_display_name
    found = await reads.family_ids(conn, list(wanted))
    # In external id order, so two batches lock new families in the same order.
    ordered = sorted((ext, n) for ext, n in wanted.items() if n and ext not in found)
    if ordered:
        new = [(i, n, ext) for i, (ext, n) in zip(new_ids(len(ordered)), ordered, strict=True)]
        created = await db.insert_families(conn, new)
        found.update(created)
        if len(created) < len(new):  # a concurrent import created some first
            found = await reads.family_ids(conn, list(wanted))
    known = []
    for r in records:
        if r.family_external_id in found:
            known.append(r)
        else:
            outcome.rejections.append(
                rejection(
                    r.position,
                    r.external_id,
                    InvalidArgument(
                        "family_display_name", "required for a family imported for the first time"
                    ),
                )
            )
    return found, known


async def _post_openings(
    conn: Conn, plans: Sequence[Plan], pooled: Sequence[Plan]
) -> set[uuid.UUID]:
    """Opening balances of existing customers, and of new ones whose family pools its wallet.

    Accounts are made where missing: an older customer may predate accounts,
    and a new member of a pooled family still gets an (empty) account of its own.
    """
    if not plans and not pooled:
        return set()
    ids = [p.customer_id for p in (*plans, *pooled)]
    await db.prefer_custom_plans(conn)
    accounts = await db.accounts_of(conn, ids, create=True)
    await db.prefer_cached_plans(conn)
    plans = [*plans, *(p for p in pooled if p.opening_points > 0)]
    await post_entries(
        conn,
        [
            LedgerEntry(
                account_id=accounts[p.customer_id],
                member_id=p.customer_id,
                kind="adjust",
                points=p.opening_points,
                reason=OPENING_REASON,
                source="system",
                source_ref=p.record.external_id,
                idempotency_key=p.record.opening_key,
            )
            for p in plans
        ],
    )
    return {accounts[p.customer_id] for p in plans}
