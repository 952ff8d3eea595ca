"""The scheduler's and workers' own variables: schedules, queue and job policies."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from customer_core.config import EnvReader, Settings, Variable, register
from customer_core.domain.jobs import DEFAULT_SCHEDULES, JOB_NAMES, CronError, JobPolicy, parse_cron
from customer_core.errors import ConfigError

OFF = "off"


def schedule_variable(job: str) -> str:
    return f"JOBS_SCHEDULE_{job.upper()}"


VARIABLES = register(
    *(
        Variable(
            schedule_variable(job),
            DEFAULT_SCHEDULES[job],
            f"cron schedule (UTC) of the {job} job, or `off`",
        )
        for job in JOB_NAMES
    ),
    Variable("JOBS_QUEUE", "customer-service:jobs", "Valkey stream the jobs are sent on"),
    Variable(
        "JOBS_REDELIVER_SECONDS",
        "300",
        "a job unacknowledged this long (its worker died) is taken over by another worker",
    ),
    Variable("JOBS_WORKER_CONCURRENCY", "2", "jobs one worker runs at the same time"),
    Variable(
        "JOBS_SHUTDOWN_GRACE_SECONDS",
        "90",
        "on SIGTERM a worker takes no new job and lets running ones finish this long "
        "(keep it below the pod's terminationGracePeriodSeconds)",
    ),
    Variable("JOBS_BATCH_SIZE", "10000", "rows per transaction in batched jobs"),
    Variable("POINTS_EXPIRY_WARNING_DAYS", "14", "warn this many days before points expire"),
    Variable("ORDER_HISTORY_RETENTION_DAYS", "730", "order history older than this is archived"),
    Variable("INBOX_RETENTION_DAYS", "30", "processed event ids are kept this long"),
    Variable(
        "PURGE_GRACE_DAYS", "30", "personal data of deleted customers is purged after this long"
    ),
    Variable(
        "ROLLUP_OVERLAP_SECONDS",
        "300",
        "each roll-up re-reads this much before its watermark (late commits)",
    ),
    Variable(
        "NOTIFICATIONS_TOPIC", "customer.notifications", "Kafka topic for customer notifications"
    ),
)


@dataclass(frozen=True)
class JobSettings:
    schedules: dict[str, str]  # job -> cron expression; disabled jobs are absent
    queue: str
    redeliver_seconds: int
    concurrency: int
    shutdown_grace_seconds: int
    notifications_topic: str
    policy: JobPolicy


def load_job_settings(core: Settings, env: Mapping[str, str] | None = None) -> JobSettings:
    """Read and validate the job variables; raises ConfigError naming the first bad one."""
    r = EnvReader(os.environ if env is None else env)
    schedules: dict[str, str] = {}
    for job in JOB_NAMES:
        name = schedule_variable(job)
        raw = r.text(name)
        if raw.lower() == OFF:
            continue
        try:
            schedules[job] = parse_cron(raw).expression
        except CronError as exc:
            raise ConfigError(name, str(exc)) from None
    warning_days = r.integer("POINTS_EXPIRY_WARNING_DAYS", 0, 3650)
    if warning_days >= core.loyalty.expiry_days:
        raise ConfigError(
            "POINTS_EXPIRY_WARNING_DAYS",
            f"must be below POINTS_EXPIRY_DAYS ({core.loyalty.expiry_days})",
        )
    return JobSettings(
        schedules=schedules,
        queue=r.text("JOBS_QUEUE"),
        redeliver_seconds=r.integer("JOBS_REDELIVER_SECONDS", 1, 7 * 86400),
        concurrency=r.integer("JOBS_WORKER_CONCURRENCY", 1, 64),
        shutdown_grace_seconds=r.integer("JOBS_SHUTDOWN_GRACE_SECONDS", 0, 3600),
        notifications_topic=r.text("NOTIFICATIONS_TOPIC"),
        policy=JobPolicy(
            expiry_days=core.loyalty.expiry_days,
            expiry_warning_days=warning_days,
            history_retention_days=r.integer("ORDER_HISTORY_RETENTION_DAYS", 1, 36500),
            inbox_retention_days=r.integer("INBOX_RETENTION_DAYS", 1, 3650),
            purge_grace_days=r.integer("PURGE_GRACE_DAYS", 0, 3650),
            rollup_overlap_seconds=r.integer("ROLLUP_OVERLAP_SECONDS", 0, 86400),
            batch_size=r.integer("JOBS_BATCH_SIZE", 1, 1_000_000),
        ),
    )
