"""Applying a batch of order events: one transaction, each event's effect exactly once.

The inbox (`processed_events`) is claimed in the same transaction as the
effects, so an event replayed after a crash, a rebalance or a dead-letter
replay finds its id taken and changes nothing. Effects come from the
transitions of each order's state (domain.order_events), aggregated per customer and
written with one set-based statement per table.

After the commit the customers' caches are invalidated and change notices go
out on Valkey. A database that cannot be reached raises `Unavailable` (the
consumer retries the same batch); an event the database refuses for good is
isolated by bisecting the batch, and rejected (`Applying`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from customer_core import notices
from customer_core.context import Context
from customer_core.db import Conn, order_writes, outage
from customer_core.db import inbox as db
from customer_core.domain.order_events import (
    Change,
    OrderEvent,
    OrderState,
    apply_event,
    stats_deltas,
)
from customer_core.domain.values import quick_init
from customer_core.errors import Unavailable
from customer_core.notices import Activity, Notice
from customer_core.usecases import order_points

log = logging.getLogger(__name__)


@quick_init
@dataclass(frozen=True)
class Incoming:
    """A decoded event and where it came from."""

    event: OrderEvent
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Rejected:
    incoming: Incoming
    reason: str


@dataclass
class BatchResult:
    applied: list[Incoming] = field(default_factory=list)
    duplicates: list[Incoming] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    activities: list[Activity] = field(default_factory=list)

    def merge(self, other: BatchResult) -> None:
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.notices += other.notices
        self.activities += other.activities


async def apply_batch(
    ctx: Context, batch: Sequence[Incoming], seconds: float = 60.0, *, publish: bool = True
) -> BatchResult:
    """Apply `batch` (isolating what fails), then invalidate caches and publish notices.

    With `publish=False` the caller invalidates the caches of the customers in
    `result.notices`, then publishes `result.notices` and `result.activities`,
    itself (the consumer does, in order, off its critical path).
    Raises Unavailable when the database cannot be reached (what committed before
    is then not in any result: use `Applying` to keep it across a retry).
    """
    applying = Applying(batch)
    await applying.apply(ctx, isolate_any=True, seconds=seconds)
    result = applying.committed
    if publish:
        await ctx.cache.invalidate(*sorted({n.customer_id for n in result.notices}))
        await notices.publish(ctx.valkey, result.notices, result.activities)
    return result


class Applying:
    """One batch on its way into the database, across the caller's retries.

    `committed` is what every transaction that committed did (its applied events,
    duplicates, rejections, notices and activities), and `pending` what is not
    committed yet. A retry after a later failure (a dependency lost halfway through
    an isolation, or the dead-letter send after the commit) applies only `pending`,
    so the changes to publish are those the commits made, not the duplicates a
    second attempt would find.
    """

    def __init__(self, batch: Sequence[Incoming]) -> None:
        self.pending = list(batch)
        self.committed = BatchResult()

    async def apply(
        self,
        ctx: Context,
        *,
        isolate_any: bool,
        seconds: float = 60.0,
        run: Transaction | None = None,
    ) -> None:
        """Apply what is pending. A part the database refuses (any PostgresError
        but an outage) is bisected until the event at fault is alone, and that one
        is rejected; with `isolate_any`, so is a part that fails with any other
        exception (the caller first retries those with backoff: they may pass).
        Raises Unavailable (and, without `isolate_any`, the unexpected exception)."""
        if self.pending:
            await self._apply(
                run or _apply_in_transaction, ctx, list(self.pending), isolate_any, seconds
            )

    async def _apply(
        self,
        run: Transaction,
        ctx: Context,
        batch: list[Incoming],
        isolate_any: bool,
        seconds: float,
    ) -> None:
        try:
            result = await run(ctx, batch, seconds)
        except Unavailable:
            raise
        except Exception as exc:
            refused = isinstance(exc, asyncpg.PostgresError)
            if not refused and not isolate_any:
                raise
            if len(batch) == 1:
                reason = (
                    f"database refused it: {exc}"
                    if refused
                    else (f"apply failed: {type(exc).__name__}: {exc}")
                )
                log.warning("event rejected", extra={"error": reason})
                result = BatchResult(rejected=[Rejected(batch[0], reason)])
            else:
                log.warning(
                    "batch failed; bisecting it to find the event at fault",
                    extra={"events": len(batch), "error": str(exc)},
                )
                half = len(batch) // 2
                await self._apply(run, ctx, batch[:half], isolate_any, seconds)
                await self._apply(run, ctx, batch[half:], isolate_any, seconds)
                return
        self.committed.merge(result)
        done = {id(i) for i in batch}
        self.pending = [i for i in self.pending if id(i) not in done]


Transaction = Callable[[Context, Sequence[Incoming], float], Awaitable[BatchResult]]


async def _apply_in_transaction(
    ctx: Context, batch: Sequence[Incoming], seconds: float
) -> BatchResult:
    try:
        async with asyncio.timeout(seconds):
            async with ctx.pool.acquire() as conn, conn.transaction():
                return await apply_events(conn, ctx, batch)
    except Exception as exc:
        if not outage.is_retryable(exc):
            raise
        raise Unavailable(f"database: {type(exc).__name__}: {exc}") from exc


async def apply_events(conn: Conn, ctx: Context, batch: Sequence[Incoming]) -> BatchResult:
    """The whole batch inside the caller's transaction."""
    result = BatchResult()
    seen: set[str] = set()
    unique: list[Incoming] = []
    for incoming in batch:
        if incoming.event.event_id in seen:
            result.duplicates.append(incoming)
        else:
            seen.add(incoming.event.event_id)
            unique.append(incoming)

    members = await db.lock_members(conn, (i.event.customer_id for i in unique))
    known: list[Incoming] = []
    for incoming in unique:
        if incoming.event.customer_id in members:
            known.append(incoming)
        else:
            reason = f"customer_id: unknown customer {incoming.event.customer_id}"
            result.rejected.append(Rejected(incoming, reason))

    loaded = await db.lock_orders(conn, (i.event.order_id for i in known))
    states = dict(loaded)
    owners = {order_id: s.customer_id for order_id, s in states.items()}
    owned: list[Incoming] = []
    for incoming in known:
        ev = incoming.event
        owner = owners.setdefault(ev.order_id, ev.customer_id)
        if owner == ev.customer_id:
            owned.append(incoming)
        else:
            reason = f"order_id: order {ev.order_id!r} belongs to another customer"
            result.rejected.append(Rejected(incoming, reason))

    claimed = await db.claim_events(
        conn,
        [i.event.event_id for i in owned],
        [i.topic for i in owned],
        [i.partition for i in owned],
        [i.offset for i in owned],
    )
    initial: dict[str, OrderState] = {}
    changes: list[Change] = []
    for incoming in owned:
        ev = incoming.event
        if ev.event_id not in claimed:
            result.duplicates.append(incoming)
            continue
        result.applied.append(incoming)
        before = states.get(ev.order_id) or OrderState(ev.order_id, ev.customer_id)
        initial.setdefault(ev.order_id, before)
        states[ev.order_id], change = apply_event(before, ev)
        changes.append(change)
    if not changes:
        return result

    family_of = {cid: m.family_id for cid, m in members.items()}
    points = await order_points.settle(conn, ctx.settings, changes, initial, states, family_of)
    for order_id, delta in points.earned_by_order.items():
        states[order_id] = states[order_id].with_points(delta)
    deltas = stats_deltas((c, states[c.event.order_id]) for c in changes)
    orders = [states[oid] for oid in sorted(initial)]
    await order_writes.write_batch(conn, orders, family_of, loaded, deltas)

    result.activities += _order_activities(changes, family_of) + points.activities
    changed: dict[uuid.UUID, set[str]] = {cid: {notices.STATS} for cid in deltas}
    for cid, what in points.changed.items():
        changed.setdefault(cid, set()).update(what)
    # Every member of a pooled wallet the batch moved (the batch's account lock
    # answers them, by balances.viewers' rule): the notifier bumps their caches.
    seen_by = points.viewers
    for cid in seen_by:
        changed.setdefault(cid, set()).add(notices.POINTS)
    family_of = {**seen_by, **family_of}
    result.notices = [Notice(cid, family_of.get(cid), frozenset(w)) for cid, w in changed.items()]
    return result


def _order_activities(
    changes: Sequence[Change], family_of: dict[uuid.UUID, uuid.UUID]
) -> list[Activity]:
    out = []
    for change in changes:
        # An event is of one kind, so at most one of the three happened.
        if change.placed:
            kind = "order_placed"
        elif change.completed:
            kind = "order_completed"
        elif change.cancelled:
            kind = "order_cancelled"
        else:
            continue
        ev = change.event
        family = family_of.get(ev.customer_id)
        out.append(Activity(kind, ev.customer_id, family, ev.order_id, occurred_at=ev.occurred_at))
    return out


async def customers_for_demo(ctx: Context, limit: int = 200) -> list[uuid.UUID]:
    """Customers the demo traffic orders for (the oldest, not deleted)."""
    async with ctx.pool.acquire() as conn:
        return await db.active_customers(conn, limit)
