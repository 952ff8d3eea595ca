"""The jobs as Taskiq tasks, and running one with metrics, a span and logs.

Each task is a thin wrapper: it names the job and the scheduled tick; the use
case does the work under the job's advisory lock (customer_core.usecases.jobs).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram
from taskiq import AsyncBroker

from customer_core.context import Context
from customer_core.domain.jobs import (
    CLEANUP,
    EXPIRY,
    HOLDS,
    JOB_NAMES,
    NOTIFICATIONS,
    RECONCILE,
    ROLLUPS,
    JobOutcome,
    JobPolicy,
)
from customer_core.usecases.jobs import cleanup, expiry, holds, notifications, reconcile, rollups
from customer_core.usecases.jobs.runner import (
    DUPLICATE,
    FAILED,
    SKIPPED,
    SUCCEEDED,
    JobFn,
    RunResult,
    run_locked,
)
from customer_scheduler.publisher import NotificationPublisher
from customer_scheduler.settings import JobSettings

log = logging.getLogger("customer_scheduler.jobs")
tracer = trace.get_tracer("customer_scheduler")

# `job_name`, not `job`: Prometheus gives every scraped series a `job` label of its own.
RUNS = Counter("customer_job_runs", "Job runs by outcome.", ["job_name", "outcome"])
DURATION = Histogram(
    "customer_job_duration_seconds",
    "How long a job run took.",
    ["job_name"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800),
)
ROWS = Gauge("customer_job_rows", "Rows the last successful run touched.", ["job_name"])
LAST_SUCCESS = Gauge(
    "customer_job_last_success_timestamp_seconds", "When the job last succeeded.", ["job_name"]
)
DIFFERENCES = Gauge(
    "customer_reconcile_differences", "Rows failing a reconciliation check.", ["check"]
)

TASK_PREFIX = "customer.jobs."


def task_name(job: str) -> str:
    return TASK_PREFIX + job


def runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Jobs:
    """The jobs of one process, bound to its context."""

    def __init__(self, ctx: Context, settings: JobSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        # The asyncio tasks running a job now: a stopping worker waits for them.
        self.running: set[asyncio.Task[object]] = set()
        self.publisher = NotificationPublisher(ctx.settings, settings.notifications_topic)
        notify: JobFn = functools.partial(_notify, publish=self.publisher.publish)
        self.functions: dict[str, JobFn] = {
            ROLLUPS: rollups.roll_up,
            NOTIFICATIONS: notify,
            EXPIRY: expiry.expire_points,
            CLEANUP: cleanup.clean_up,
            HOLDS: holds.release_holds,
            RECONCILE: reconcile.reconcile,
        }
        # Every job's outcomes start at 0: "failed" reads 0 (not "No data") until one
        # fails, and rate() sees the first failure.
        for job in self.functions:
            for outcome in (SUCCEEDED, FAILED, SKIPPED, DUPLICATE):
                RUNS.labels(job, outcome)

    async def run(
        self, job: str, *, tick: str | None = None, now: datetime | None = None
    ) -> RunResult:
        """Run `job` now; record metrics, a span and a log line whatever happens."""
        with tracer.start_as_current_span(f"job {job}", attributes={"job": job}) as span:
            started = time.perf_counter()
            try:
                result = await run_locked(
                    self.ctx,
                    job,
                    self.functions[job],
                    self.settings.policy,
                    runner=runner_id(),
                    tick=tick,
                    now=now,
                )
            except Exception as exc:
                seconds = time.perf_counter() - started
                RUNS.labels(job, "failed").inc()
                DURATION.labels(job).observe(seconds)
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR, str(exc))
                log.exception(
                    "job failed", extra={"job": job, "tick": tick, "seconds": round(seconds, 3)}
                )
                raise
            self._record(result, tick)
            span.set_attribute("outcome", result.outcome)
            span.set_attribute("rows", result.rows)
            return result

    def _record(self, result: RunResult, tick: str | None) -> None:
        job = result.job
        RUNS.labels(job, result.outcome).inc()
        extra: dict[str, object] = {
            "job": job,
            "tick": tick,
            "outcome": result.outcome,
            "run_id": result.run_id,
        }
        if result.outcome != SUCCEEDED or result.result is None:
            log.info("job not run", extra=extra)
            return
        DURATION.labels(job).observe(result.seconds)
        ROWS.labels(job).set(result.rows)
        LAST_SUCCESS.labels(job).set(time.time())
        extra.update(rows=result.rows, seconds=round(result.seconds, 3))
        log.info("job done: %s", result.result.detail, extra=extra)
        for finding in result.result.findings:
            DIFFERENCES.labels(finding.check).set(finding.count)
            if finding.count:
                log.warning(
                    "reconciliation difference: %s",
                    finding.check,
                    extra={"check": finding.check, "count": finding.count, "ids": finding.ids},
                )

    async def aclose(self) -> None:
        await self.publisher.aclose()


async def _notify(
    ctx: Context,
    policy: JobPolicy,
    now: datetime,
    *,
    publish: notifications.Publish,
) -> JobOutcome:
    return await notifications.notify(ctx, policy, now, publish)


def register_tasks(broker: AsyncBroker, jobs: Jobs | None) -> None:
    """Declare one task per job (a scheduler only sends them, so `jobs` may be None)."""
    for job in JOB_NAMES:
        broker.register_task(_task(jobs, job), task_name=task_name(job))


def _task(jobs: Jobs | None, job: str) -> Callable[..., Awaitable[str]]:
    async def run_job(tick: str | None = None) -> str:
        assert jobs is not None, "tasks run only in a worker"
        task = asyncio.current_task()
        assert task is not None
        jobs.running.add(task)
        try:
            result = await jobs.run(job, tick=tick)
        finally:
            jobs.running.discard(task)
        return result.outcome

    run_job.__name__ = f"run_{job}"
    return run_job
