"""ImportCustomers: validate records, write them in set-based batches, count the outcomes.

Memory stays bounded whatever the stream's length: one batch of records at a
time, counts, and at most MAX_REJECTIONS rejections. Each batch commits on its
own, so a failure part-way (database gone) loses nothing that was written,
and re-running the import (idempotent by external id) completes it. The
writes of a batch: usecases/import_writes.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from customer_core.context import Context
from customer_core.domain.imports import (
    BATCH_SIZE,
    Batch,
    BatchOutcome,
    ImportRecord,
    ImportSummary,
    check_record,
    rejection,
)
from customer_core.errors import InvalidArgument
from customer_core.usecases.import_writes import write_batch

# Batches written at once. PostgreSQL spends more CPU on a new record than
# this process (per-row foreign key checks, seven indexes on customers), so
# writes on several connections keep both cores busy while this process
# validates the next batch; three measured faster than two on 2 cores.
IN_FLIGHT = 3


class ImportSession:
    """One ImportCustomers stream: feed it records in order, then finish() (or close()).

    While batches are written, the next is validated and collected, so the
    database and this process work at the same time. At most IN_FLIGHT writes
    run at once, and a batch sharing an external id or username with one in
    flight waits for it (a later record may depend on an earlier one: a
    repeated external id updates, a username taken earlier is rejected).
    """

    def __init__(self, ctx: Context, batch_size: int = BATCH_SIZE) -> None:
        self.ctx = ctx
        self.batch_size = batch_size
        self.summary = ImportSummary()
        self._batch = Batch()
        self._writing: deque[tuple[asyncio.Task[BatchOutcome], Batch]] = deque()

    def reject(self, position: int, external_id: str, exc: InvalidArgument) -> None:
        self.summary.received += 1
        self.summary.reject(rejection(position, external_id, exc))

    async def add(self, record: ImportRecord) -> None:
        """Validate and queue one record; writes a batch when it is full."""
        try:
            checked = check_record(record)
        except InvalidArgument as exc:
            self.reject(record.position, record.external_id, exc)
            return
        await self.add_checked(checked)

    async def add_checked(self, record: ImportRecord) -> None:
        """Queue one record check_record returned; writes a batch when it is full."""
        self.summary.received += 1
        if not self._batch.fits(record):
            await self._flush()
        self._batch.add(record)
        if len(self._batch) >= self.batch_size:
            await self._flush()

    async def finish(self) -> ImportSummary:
        await self._flush()
        while self._writing:
            await self._settle_oldest()
        self.summary.rejections.sort(key=lambda r: r.position)
        return self.summary

    async def close(self) -> None:
        """Stop writes still in flight (the client went away)."""
        for task, _ in self._writing:
            task.cancel()
        for task, _ in self._writing:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._writing.clear()

    async def _settle_oldest(self) -> None:
        task, _ = self._writing[0]
        outcome = await task
        self._writing.popleft()
        self.summary.add(outcome)

    async def _flush(self) -> None:
        batch, self._batch = self._batch, Batch()
        if not batch.records:
            return
        while len(self._writing) >= IN_FLIGHT or any(b.overlaps(batch) for _, b in self._writing):
            await self._settle_oldest()
        task = asyncio.create_task(write_batch(self.ctx, batch.records))
        self._writing.append((task, batch))
