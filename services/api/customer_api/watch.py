"""One WatchCustomerStats stream's state: the newest snapshot not yet sent (latest wins)."""

from __future__ import annotations

import asyncio
import uuid

from customer_api.flow import Closable
from customer_core.domain.streams import StatsSnapshot


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
