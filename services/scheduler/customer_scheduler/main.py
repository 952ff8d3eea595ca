"""`customer-service scheduler` and `customer-service worker`.

The scheduler (exactly one replica) sends each job on its cron schedule
through the Valkey stream; workers (any number) run them. On SIGTERM a worker
takes no new job and lets the running ones finish for up to
JOBS_SHUTDOWN_GRACE_SECONDS (customer_scheduler.receiving); a job cancelled
after that stays unacknowledged and is taken over by another worker after
JOBS_REDELIVER_SECONDS (jobs commit in batches and are idempotent, so the
taker finishes what is left).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from taskiq import TaskiqScheduler
from taskiq.api import run_scheduler_task

from customer_core.config import load_settings
from customer_core.context import Context
from customer_core.context.runtime import run_until_signalled
from customer_core.telemetry import setup, start_metrics_server
from customer_scheduler.broker import build_broker
from customer_scheduler.receiving import drain, receive
from customer_scheduler.schedule import ConfigScheduleSource
from customer_scheduler.settings import load_job_settings
from customer_scheduler.tasks import Jobs, register_tasks

log = logging.getLogger("customer_scheduler")


def scheduler_main(argv: list[str]) -> int:
    settings = load_settings()
    jobs = load_job_settings(settings)
    setup(settings, "scheduler")

    async def main(stop: asyncio.Event) -> int:
        port = start_metrics_server(settings.metrics_port)
        broker = build_broker(settings, jobs)
        register_tasks(broker, None)
        scheduler = TaskiqScheduler(broker, [ConfigScheduleSource(jobs)])
        await broker.startup()
        log.info(
            "scheduler started",
            extra={"schedules": jobs.schedules, "queue": jobs.queue, "metrics_port": port},
        )
        loop = asyncio.create_task(run_scheduler_task(scheduler, interval=timedelta(minutes=1)))
        await stop.wait()
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        await broker.shutdown()
        return 0

    return run_until_signalled(main)


def worker_main(argv: list[str]) -> int:
    settings = load_settings()
    job_settings = load_job_settings(settings)
    setup(settings, "worker")

    async def main(stop: asyncio.Event) -> int:
        port = start_metrics_server(settings.metrics_port)
        ctx = await Context.create(settings)
        jobs = Jobs(ctx, job_settings)
        broker = build_broker(settings, job_settings)
        register_tasks(broker, jobs)
        broker.is_worker_process = True
        await broker.startup()
        finish = asyncio.Event()
        grace = job_settings.shutdown_grace_seconds
        receiving = asyncio.create_task(
            receive(broker, finish, concurrency=job_settings.concurrency, grace=grace)
        )
        log.info(
            "worker started",
            extra={
                "queue": job_settings.queue,
                "concurrency": job_settings.concurrency,
                "metrics_port": port,
            },
        )
        try:
            await stop.wait()
        finally:
            await drain(broker, receiving, jobs.running, finish, grace)
            await broker.shutdown()
            await jobs.aclose()
            await ctx.aclose()
        return 0

    return run_until_signalled(main)
