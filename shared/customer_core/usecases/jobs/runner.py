"""One run of a job: under its advisory lock, recorded in job_runs.

A second copy of a job that is already running (an accidental second
scheduler, a redelivery, `jobs run` by hand) does not wait: it is skipped,
since the running copy does the same work. A scheduled tick that already
succeeded is not run again; a tick whose runner died (its row still says
'running' while nobody holds the lock) is taken over.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from customer_core.context import Context
from customer_core.db import jobs as db
from customer_core.domain.jobs import JobOutcome, JobPolicy

JobFn = Callable[[Context, JobPolicy, datetime], Awaitable[JobOutcome]]

SUCCEEDED = "succeeded"
FAILED = "failed"
SKIPPED = "skipped"  # another copy holds the lock
DUPLICATE = "duplicate"  # this tick already succeeded


@dataclass(frozen=True)
class RunResult:
    job: str
    outcome: str
    seconds: float
    run_id: int | None = None
    result: JobOutcome | None = None

    @property
    def rows(self) -> int:
        return self.result.rows if self.result else 0


async def run_locked(
    ctx: Context,
    job: str,
    fn: JobFn,
    policy: JobPolicy,
    *,
    runner: str,
    tick: str | None = None,
    now: datetime | None = None,
) -> RunResult:
    """Run `fn` unless another copy is running; a failure is recorded, then re-raised."""
    started = time.perf_counter()
    async with ctx.pool.acquire() as conn:
        if not await db.try_lock(conn, job):
            return RunResult(job, SKIPPED, time.perf_counter() - started)
        try:
            run_id = await db.start_run(conn, job, tick, runner)
            if run_id is None:
                return RunResult(job, DUPLICATE, time.perf_counter() - started)
            try:
                outcome = await fn(ctx, policy, now or datetime.now(UTC))
            except BaseException as exc:
                await db.finish_run(conn, run_id, FAILED, 0, f"{type(exc).__name__}: {exc}")
                raise
            await db.finish_run(conn, run_id, SUCCEEDED, outcome.rows, outcome.detail)
            return RunResult(job, SUCCEEDED, time.perf_counter() - started, run_id, outcome)
        finally:
            await db.unlock(conn, job)
