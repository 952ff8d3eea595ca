"""WatchCustomerStats: each stream's newest snapshot not yet sent (latest wins), and
when the hub next re-reads each watched customer's statistics.

A notice for a watched customer schedules one re-read of that customer's
statistics, at once after a quiet spell, else at the end of the coalescing
interval; due customers are read together in one query, and the snapshot goes
to each of the customer's watchers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field

from customer_api.flow import Closable
from customer_core.context import Context
from customer_core.domain.streams import StatsSnapshot, refresh_delay
from customer_core.usecases.stats import read_many

log = logging.getLogger(__name__)

READ_BATCH = 500  # customers re-read in one statistics query


class StatsWatch(Closable):
    """One WatchCustomerStats stream: the newest snapshot not yet sent, if any."""

    def __init__(self, customer_id: uuid.UUID) -> None:
        super().__init__()
        self.customer_id = customer_id
        self.sent: StatsSnapshot | None = None
        self._pending: StatsSnapshot | None = None
        self._pending_started = 0.0
        self._baseline = 0.0
        self._ready = asyncio.Event()

    def begin(self, first: StatsSnapshot, started: float) -> None:
        """The stream sent `first`, read at `started`; older reads are ignored from now on."""
        self.sent = first
        self._baseline = started
        if self._pending is not None and (
            self._pending_started < started or self._pending == first
        ):
            self._pending = None

    def offer(self, snapshot: StatsSnapshot, started: float) -> None:
        if started < self._baseline or self.error is not None:
            return
        if snapshot == self.sent:
            self._pending = None  # the client already shows this
            return
        self._pending, self._pending_started = snapshot, started
        self._ready.set()

    async def next(self) -> StatsSnapshot:
        while True:
            self.raise_if_closed()
            if self._pending is not None and self.sent is not None:
                snapshot, self._pending = self._pending, None
                self.sent = snapshot
                return snapshot
            self._ready.clear()
            await self._ready.wait()

    def on_close(self) -> None:
        self._pending = None
        self._ready.set()


@dataclass(eq=False)
class _Group:
    watchers: set[StatsWatch] = field(default_factory=set)
    last_refresh: float | None = None


class StatsWatchers:
    """This replica's statistics watches by customer, and the customers due a re-read."""

    def __init__(self, ctx: Context, coalesce_seconds: float) -> None:
        self.ctx = ctx
        self.coalesce_seconds = coalesce_seconds
        self._groups: dict[uuid.UUID, _Group] = {}
        self._due: dict[uuid.UUID, float] = {}
        self._due_changed = asyncio.Event()

    def __len__(self) -> int:
        """Customers watched."""
        return len(self._groups)

    def add(self, watch: StatsWatch) -> None:
        self._groups.setdefault(watch.customer_id, _Group()).watchers.add(watch)

    def remove(self, watch: StatsWatch) -> None:
        group = self._groups.get(watch.customer_id)
        if group is not None:
            group.watchers.discard(watch)
            if not group.watchers:
                del self._groups[watch.customer_id]
                self._due.pop(watch.customer_id, None)

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    def changed(self, customer_id: uuid.UUID) -> None:
        """The customer's statistics may read differently: re-read them for its watchers."""
        group = self._groups.get(customer_id)
        if group is None or customer_id in self._due:
            return
        now = self.now()
        self._due[customer_id] = now + refresh_delay(group.last_refresh, now, self.coalesce_seconds)
        self._due_changed.set()

    def all_changed(self) -> None:
        for customer_id in list(self._groups):
            self.changed(customer_id)

    async def run(self) -> None:
        """Re-read the customers as they fall due, until cancelled."""
        while True:
            if not self._due:
                self._due_changed.clear()
                await self._due_changed.wait()
                continue
            now = self.now()
            soonest = min(self._due.values())
            if soonest > now:
                self._due_changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._due_changed.wait(), soonest - now)
                continue
            await self._refresh([c for c, at in self._due.items() if at <= now][:READ_BATCH], now)

    async def _refresh(self, customers: list[uuid.UUID], started: float) -> None:
        for c in customers:
            del self._due[c]
            group = self._groups.get(c)
            if group is not None:
                group.last_refresh = started
        try:
            snapshots = await read_many(self.ctx, customers)
        except Exception as exc:
            # The database is away: try these customers again in a second.
            log.warning("refreshing watched statistics failed", extra={"error": repr(exc)})
            for c in customers:
                if c in self._groups:
                    self._due.setdefault(c, started + 1.0)
            return
        for c in customers:
            group, snapshot = self._groups.get(c), snapshots.get(c)
            if group is not None and snapshot is not None:
                for watch in list(group.watchers):
                    watch.offer(snapshot, started)
