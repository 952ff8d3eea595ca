"""Change notices, published off the batch's critical path.

The database is the truth and notices are best effort (customer_core.notices),
so the poll loop hands each committed batch's notices to this one task and
goes on with the next batch; the task publishes them in commit order, merging
whatever queued up meanwhile into one pipeline. A bounded queue makes the loop
wait rather than fall arbitrarily far behind when Valkey is slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import redis.asyncio as redis

from customer_core import notices
from customer_core.notices import Activity, Notice

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, client: redis.Redis, depth: int = 8) -> None:
        self.client = client
        self.queue: asyncio.Queue[tuple[Sequence[Notice], Sequence[Activity]]] = asyncio.Queue(
            depth
        )
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._drain())

    async def put(self, batch_notices: Sequence[Notice], activities: Sequence[Activity]) -> None:
        if batch_notices or activities:
            await self.queue.put((batch_notices, activities))

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
                await notices.publish(self.client, all_notices, all_activities)
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
