"""Cache invalidation and change notices of the consumer's batches, off their critical path.

The database is the truth and notices are best effort (customer_core.notices),
so the poll loop hands each committed batch's changes to this one task and
goes on with the next batch; the task, in commit order and merging whatever
queued up meanwhile, bumps the customers' cache generations, then appends
activities and publishes notices (customer_core.batch_notices, one script call
per chunk). A bounded queue makes the loop wait rather than fall arbitrarily
far behind when Valkey is slow. (Until the bump, an api replica may serve a
value cached before the commit, as it could between the commit and the bump
before; now the window is one queue turn longer.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from customer_core import batch_notices
from customer_core.context import Context
from customer_core.notices import Activity, Notice

log = logging.getLogger(__name__)


class Notifier:
    """Per committed batch, in commit order: bump the customers' cache generations,
    then append activities and publish notices (so a replica that hears a notice
    and reads again misses the old cached value)."""

    def __init__(self, ctx: Context, depth: int = 8) -> None:
        self.script = batch_notices.publisher(ctx.valkey)
        self.ttls = batch_notices.RecentTtls()
        self.queue: asyncio.Queue[tuple[Sequence[Notice], Sequence[Activity]]] = asyncio.Queue(
            depth
        )
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._drain())

    async def put(self, notices: Sequence[Notice], activities: Sequence[Activity]) -> None:
        if notices or activities:
            await self.queue.put((notices, activities))

    async def _drain(self) -> None:
        while True:
            first = await self.queue.get()
            all_notices, all_activities = list(first[0]), list(first[1])
            taken = 1
            while not self.queue.empty():
                more = self.queue.get_nowait()
                all_notices += more[0]
                all_activities += more[1]
                taken += 1
            try:
                bump = sorted({n.customer_id for n in all_notices})
                await batch_notices.publish(
                    self.script, all_notices, all_activities, bump, self.ttls
                )
            except Exception:  # a notice must never stop the consumer
                log.exception("publishing notices failed")
            for _ in range(taken):
                self.queue.task_done()

    async def close(self, grace: float = 5.0) -> None:
        """Publish what is queued (for at most `grace` seconds), then stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), grace)
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
