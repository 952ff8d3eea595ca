"""Job runs, watermarks and the per-job advisory lock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from customer_core.db import Conn
from customer_core.db.sessions import mark_session_state

# A session-level lock per job name, so it is released when the holder's
# connection ends, including when its process is killed.
TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended('customer-job:' || $1, 0))"
UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('customer-job:' || $1, 0))"

START_ADHOC = """
INSERT INTO job_runs (job, runner) VALUES ($1, $2) RETURNING id
"""
# A tick that already succeeded returns no row; one whose runner died (it is
# still 'running' while we hold the lock) or failed is taken over.
START_TICK = """
INSERT INTO job_runs (job, tick, runner) VALUES ($1, $2, $3)
ON CONFLICT (job, tick) WHERE tick IS NOT NULL DO UPDATE
    SET runner = EXCLUDED.runner, attempts = job_runs.attempts + 1,
        outcome = 'running', started_at = clock_timestamp(), finished_at = NULL
    WHERE job_runs.outcome <> 'succeeded'
RETURNING id
"""
FINISH = """
UPDATE job_runs SET outcome = $2, rows = $3, detail = $4, finished_at = clock_timestamp()
WHERE id = $1
"""
LAST_RUNS = """
SELECT DISTINCT ON (job) job, tick, runner, attempts, outcome, rows, detail,
       started_at, finished_at
FROM job_runs ORDER BY job, id DESC
"""
LAST_SUCCESS = """
SELECT job, max(finished_at) AS finished_at FROM job_runs
WHERE outcome = 'succeeded' GROUP BY job
"""
GET_WATERMARK = "SELECT mark FROM job_watermarks WHERE job = $1"
SET_WATERMARK = """
INSERT INTO job_watermarks (job, mark) VALUES ($1, $2)
ON CONFLICT (job) DO UPDATE SET mark = EXCLUDED.mark, update_time = now()
"""


@dataclass(frozen=True)
class RunRow:
    job: str
    tick: str | None
    runner: str
    attempts: int
    outcome: str
    rows: int
    detail: str
    started_at: datetime
    finished_at: datetime | None
    last_success_at: datetime | None


async def try_lock(conn: Conn, job: str) -> bool:
    mark_session_state(conn)  # the pool resets it: no lock outlives its holder's release
    return bool(await conn.fetchval(TRY_LOCK, job))


async def unlock(conn: Conn, job: str) -> None:
    await conn.fetchval(UNLOCK, job)


async def start_run(conn: Conn, job: str, tick: str | None, runner: str) -> int | None:
    """The new run's id, or None when this tick already succeeded."""
    if tick is None:
        return int(await conn.fetchval(START_ADHOC, job, runner))
    run_id = await conn.fetchval(START_TICK, job, tick, runner)
    return None if run_id is None else int(run_id)


async def finish_run(conn: Conn, run_id: int, outcome: str, rows: int, detail: str) -> None:
    await conn.execute(FINISH, run_id, outcome, rows, detail[:2000])


async def last_runs(conn: Conn) -> dict[str, RunRow]:
    successes = {r["job"]: r["finished_at"] for r in await conn.fetch(LAST_SUCCESS)}
    return {
        r["job"]: RunRow(**dict(r), last_success_at=successes.get(r["job"]))
        for r in await conn.fetch(LAST_RUNS)
    }


async def get_watermark(conn: Conn, job: str) -> datetime | None:
    mark: datetime | None = await conn.fetchval(GET_WATERMARK, job)
    return mark


async def set_watermark(conn: Conn, job: str, mark: datetime) -> None:
    await conn.execute(SET_WATERMARK, job, mark)
