"""`customer-service jobs list` and `customer-service jobs run NAME`.

`run` runs the job in this process, now, under the same advisory lock as the
workers (if a worker is running it, this run is skipped and says so).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from customer_core.config import load_settings
from customer_core.context import Context
from customer_core.domain.jobs import JOB_NAMES, parse_cron
from customer_core.usecases.jobs.runner import SUCCEEDED
from customer_core.usecases.jobs.status import last_runs
from customer_scheduler.settings import JobSettings, load_job_settings
from customer_scheduler.tasks import Jobs


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="customer-service jobs")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="schedules, last run, duration and rows touched")
    run = sub.add_parser("run", help="run one job now, in this process")
    run.add_argument("name", choices=JOB_NAMES)
    opts = parser.parse_args(argv)
    settings = load_settings()
    jobs = load_job_settings(settings)
    if opts.command == "list":
        return asyncio.run(_list(jobs))
    return asyncio.run(_run(jobs, opts.name))


async def _run(job_settings: JobSettings, name: str) -> int:
    ctx = await Context.create(load_settings())
    jobs = Jobs(ctx, job_settings)
    try:
        result = await jobs.run(name)
    finally:
        await jobs.aclose()
        await ctx.aclose()
    detail = result.result.detail if result.result else "another copy is running"
    print(f"{name}: {result.outcome} in {result.seconds:.2f}s, {result.rows} rows: {detail}")
    return 0 if result.outcome == SUCCEEDED else 1


async def _list(job_settings: JobSettings) -> int:
    ctx = await Context.create(load_settings())
    try:
        runs = await last_runs(ctx)
    finally:
        await ctx.aclose()
    now = datetime.now(UTC)
    header = ("JOB", "SCHEDULE", "NEXT RUN", "LAST RUN", "OUTCOME", "DURATION", "ROWS", "LAST OK")
    rows = [header]
    for job in JOB_NAMES:
        cron = job_settings.schedules.get(job)
        next_run = _when(parse_cron(cron).next_after(now)) if cron else "-"
        last = runs.get(job)
        if last is None:
            rows.append((job, cron or "off", next_run, "never", "-", "-", "-", "-"))
            continue
        duration = (
            f"{(last.finished_at - last.started_at).total_seconds():.2f}s"
            if last.finished_at
            else "-"
        )
        rows.append(
            (
                job,
                cron or "off",
                next_run,
                _when(last.started_at),
                last.outcome,
                duration,
                str(last.rows),
                _when(last.last_success_at),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        sys.stdout.write("\n")
    return 0


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if at else "-"
