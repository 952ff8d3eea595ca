"""Real worker processes on the real Valkey stream: delivery, races, a killed worker, the CLI."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from taskiq import TaskiqScheduler
from taskiq.exceptions import SendTaskError
from taskiq.kicker import AsyncKicker

from customer_core.config import Settings
from customer_core.context import Context
from customer_core.domain.jobs import tick_of
from customer_launcher.devstack import DevStack
from customer_scheduler.broker import JobBroker, build_broker
from customer_scheduler.schedule import ConfigScheduleSource
from customer_scheduler.settings import load_job_settings
from customer_scheduler.tasks import register_tasks, task_name

# Accounts inactive for a year with 100 points each, set-based.
SEED_INACTIVE = """
WITH f AS (
    INSERT INTO families (id, display_name)
    SELECT gen_random_uuid(), 'F' FROM generate_series(1, $1) RETURNING id
), c AS (
    INSERT INTO customers (id, family_id, username)
    SELECT gen_random_uuid(), id, 'u' || replace(id::text, '-', '') FROM f RETURNING id
), a AS (
    INSERT INTO loyalty_accounts (id, customer_id, balance, last_activity_at)
    SELECT gen_random_uuid(), id, 100, now() - interval '365 days' FROM c RETURNING id
)
INSERT INTO loyalty_points (account_id, kind, points, reason, source, idempotency_key)
SELECT id, 'earn', 100, 'seed', 'operator', 'seed:' || id FROM a
"""
MISMATCH = """
SELECT count(*) FROM loyalty_accounts a
WHERE balance <> (SELECT coalesce(sum(points), 0) FROM loyalty_points p WHERE p.account_id = a.id)
"""

Spawn = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def worker_env(env: dict[str, str]) -> dict[str, str]:
    return {
        **env,
        "JOBS_QUEUE": f"test-jobs-{uuid.uuid4().hex[:8]}",
        "JOBS_REDELIVER_SECONDS": "2",
        "JOBS_BATCH_SIZE": "1",  # a chunk per account: jobs take long enough to race and kill
    }


@pytest.fixture
def spawn(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Spawn]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(command: str = "worker", *args: str) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"{command}-{len(procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "customer_launcher", command, *args],
            env=worker_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


@pytest.fixture
async def broker(settings: Settings, worker_env: dict[str, str]) -> AsyncIterator[JobBroker]:
    jobs = load_job_settings(settings, worker_env)
    b = build_broker(settings, jobs)
    register_tasks(b, None)
    await b.startup()
    yield b
    await b.shutdown()


async def kick(broker: JobBroker, job: str, tick: str) -> None:
    await AsyncKicker(task_name(job), broker, {}).kiq(tick=tick)


async def wait_for(ctx: Context, query: str, *args: object, seconds: float = 60) -> object:
    async with asyncio.timeout(seconds):
        while True:
            async with ctx.pool.acquire() as conn:
                value = await conn.fetchval(query, *args)
            if value:
                return value
            await asyncio.sleep(0.2)


async def seed(ctx: Context, accounts: int) -> None:
    async with ctx.pool.acquire() as conn:
        await conn.execute(SEED_INACTIVE, accounts)


async def assert_expired_exactly_once(ctx: Context, accounts: int) -> None:
    async with ctx.pool.acquire() as conn:
        expired = await conn.fetchval("SELECT count(*) FROM loyalty_points WHERE kind = 'expire'")
        assert expired == accounts
        assert await conn.fetchval("SELECT sum(balance) FROM loyalty_accounts") == 0
        assert await conn.fetchval(MISMATCH) == 0


async def test_scheduled_job_runs_in_a_worker(
    ctx: Context, spawn: Spawn, broker: JobBroker, settings: Settings, worker_env: dict[str, str]
) -> None:
    await seed(ctx, 5)
    spawn("worker")
    # What the scheduler does on a tick: its source stamps the tick, then it sends.
    source = ConfigScheduleSource(load_job_settings(settings, worker_env))
    schedule = {t.schedule_id: t for t in await source.get_schedules()}["expiry"]
    await TaskiqScheduler(broker, [source]).on_ready(source, schedule)
    tick = schedule.kwargs["tick"]

    await wait_for(
        ctx,
        "SELECT 1 FROM job_runs WHERE job = 'expiry' AND tick = $1 AND outcome = 'succeeded'",
        tick,
    )
    await assert_expired_exactly_once(ctx, 5)


async def test_two_workers_and_two_schedulers_run_a_tick_once(
    ctx: Context, spawn: Spawn, broker: JobBroker
) -> None:
    await seed(ctx, 300)
    spawn("worker")
    spawn("worker")
    tick = tick_of(datetime.now(UTC))
    await asyncio.gather(kick(broker, "expiry", tick), kick(broker, "expiry", tick))

    await wait_for(ctx, "SELECT 1 FROM job_runs WHERE tick = $1 AND outcome = 'succeeded'", tick)
    await asyncio.sleep(2)  # let the second copy finish skipping
    async with ctx.pool.acquire() as conn:
        runs = await conn.fetch("SELECT attempts, outcome FROM job_runs WHERE job = 'expiry'")
    assert [tuple(r) for r in runs] == [(1, "succeeded")]
    await assert_expired_exactly_once(ctx, 300)


def wait_for_log(path: Path, text: str, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while text not in path.read_text(errors="replace"):
        assert proc.poll() is None or text in path.read_text(errors="replace"), path.read_text()
        assert time.monotonic() < deadline, f"no {text!r} in {path.read_text()}"
        time.sleep(0.05)


async def start_long_expiry(ctx: Context, broker: JobBroker, accounts: int) -> str:
    """Kick an expiry of `accounts` accounts and return once it is well under way."""
    tick = tick_of(datetime.now(UTC))
    await kick(broker, "expiry", tick)
    await wait_for(
        ctx, "SELECT count(*) >= 50 FROM loyalty_points WHERE kind = 'expire'", seconds=90
    )
    return tick


async def assert_taken_over(ctx: Context, spawn: Spawn, tick: str, accounts: int) -> None:
    """A new worker reclaims the unacknowledged job (after JOBS_REDELIVER_SECONDS) and
    finishes it in a second attempt, every account expired exactly once."""
    spawn("worker")
    await wait_for(
        ctx, "SELECT 1 FROM job_runs WHERE tick = $1 AND outcome = 'succeeded'", tick, seconds=120
    )
    async with ctx.pool.acquire() as conn:
        assert await conn.fetchval("SELECT attempts FROM job_runs WHERE tick = $1", tick) == 2
    await assert_expired_exactly_once(ctx, accounts)


async def test_a_killed_workers_job_is_completed_by_another(
    ctx: Context, spawn: Spawn, broker: JobBroker
) -> None:
    accounts = 1500
    await seed(ctx, accounts)
    doomed = spawn("worker")
    tick = await start_long_expiry(ctx, broker, accounts)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    async with ctx.pool.acquire() as conn:
        done_when_killed = await conn.fetchval(
            "SELECT count(*) FROM loyalty_points WHERE kind = 'expire'"
        )
        assert (
            await conn.fetchval("SELECT outcome FROM job_runs WHERE tick = $1", tick) == "running"
        )
    assert done_when_killed < accounts, "the job finished before the kill: make it longer"
    await assert_taken_over(ctx, spawn, tick, accounts)


async def test_a_stopping_worker_finishes_its_job_and_takes_no_new_one(
    ctx: Context, spawn: Spawn, broker: JobBroker, worker_env: dict[str, str], tmp_path: Path
) -> None:
    accounts = 1500
    await seed(ctx, accounts)
    worker_env["JOBS_SHUTDOWN_GRACE_SECONDS"] = "240"
    worker = spawn("worker")
    tick = await start_long_expiry(ctx, broker, accounts)
    worker.send_signal(signal.SIGTERM)
    wait_for_log(tmp_path / "worker-0.log", "worker stopping", worker)
    async with ctx.pool.acquire() as conn:
        done_when_stopped = await conn.fetchval(
            "SELECT count(*) FROM loyalty_points WHERE kind = 'expire'"
        )
    assert done_when_stopped < accounts, "the job finished before SIGTERM: make it longer"
    later = "2000-01-01T00:00Z"
    await kick(broker, "rollups", later)  # sent while the worker drains: not its to take

    assert await asyncio.to_thread(worker.wait, 240) == 0
    async with ctx.pool.acquire() as conn:
        runs = await conn.fetch("SELECT job, tick, attempts, outcome FROM job_runs ORDER BY job")
    assert [tuple(r) for r in runs] == [("expiry", tick, 1, "succeeded")]
    await assert_expired_exactly_once(ctx, accounts)


async def test_a_job_outlasting_the_grace_is_cancelled_and_taken_over(
    ctx: Context, spawn: Spawn, broker: JobBroker, worker_env: dict[str, str]
) -> None:
    accounts = 1500
    await seed(ctx, accounts)
    worker_env["JOBS_SHUTDOWN_GRACE_SECONDS"] = "0"
    worker = spawn("worker")
    tick = await start_long_expiry(ctx, broker, accounts)
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.wait, 30) == 0
    async with ctx.pool.acquire() as conn:
        run = await conn.fetchrow("SELECT outcome, detail FROM job_runs WHERE tick = $1", tick)
        expired = await conn.fetchval("SELECT count(*) FROM loyalty_points WHERE kind = 'expire'")
    assert expired < accounts
    assert run["outcome"] == "failed" and run["detail"].startswith("CancelledError")
    await assert_taken_over(ctx, spawn, tick, accounts)


async def test_a_worker_keeps_running_jobs_after_valkey_restarts(
    ctx: Context, spawn: Spawn, broker: JobBroker, stack: DevStack
) -> None:
    # The dev stack's Valkey keeps nothing on disk: a restart loses the stream
    # and the workers' consumer group, as a failover to an empty replica would.
    assert stack.valkey is not None
    await seed(ctx, 5)
    spawn("worker")
    first = tick_of(datetime.now(UTC))
    await kick(broker, "reconcile", first)
    await wait_for(ctx, "SELECT 1 FROM job_runs WHERE tick = $1 AND outcome = 'succeeded'", first)

    stack.valkey.stop()
    await asyncio.sleep(2)
    stack.valkey.start()
    later = "2000-01-01T00:00Z"
    # This test's own pooled connections died with the server: the first use fails.
    for _ in range(20):
        try:
            await kick(broker, "expiry", later)
            break
        except SendTaskError:
            await asyncio.sleep(0.25)
    await wait_for(
        ctx, "SELECT 1 FROM job_runs WHERE tick = $1 AND outcome = 'succeeded'", later, seconds=60
    )
    await assert_expired_exactly_once(ctx, 5)


def test_jobs_cli_runs_a_job_and_lists_schedules(ctx: Context, worker_env: dict[str, str]) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "customer_launcher", "jobs", *args],
            env={**worker_env, "JOBS_SCHEDULE_CLEANUP": "off"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    ran = cli("run", "reconcile")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("reconcile: succeeded in ")
    listed = cli("list")
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()}
    assert "*/5 * * * *" in lines["rollups"] and "never" in lines["rollups"]
    assert "succeeded" in lines["reconcile"] and "15 * * * *" in lines["reconcile"]
    assert " off " in lines["cleanup"]
    bad = cli("run", "nope")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    broken = subprocess.run(
        [sys.executable, "-m", "customer_launcher", "jobs", "list"],
        env={**worker_env, "JOBS_SCHEDULE_EXPIRY": "61 * * * *"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert broken.returncode == 2
    assert "JOBS_SCHEDULE_EXPIRY: minute: 61 is outside 0-59" in broken.stderr


def test_scheduler_process_starts_and_stops_cleanly(spawn: Spawn, tmp_path: Path) -> None:
    scheduler = spawn("scheduler")
    log = tmp_path / "scheduler-0.log"
    deadline = time.monotonic() + 60
    while "scheduler started" not in log.read_text(errors="replace"):
        assert scheduler.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, f"no start-up line: {log.read_text()}"
        time.sleep(0.1)
    scheduler.send_signal(signal.SIGTERM)
    assert scheduler.wait(30) == 0
