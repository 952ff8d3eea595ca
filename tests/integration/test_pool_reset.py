"""What giving a pooled connection back costs, and what it must still undo.

A connection that took no session-level state goes back to the pool without a
reset round trip (its last statement stays the caller's); one that took the job
lock, or any state marked so, is reset, so no lock outlives its holder's release.
"""

from __future__ import annotations

import uuid

import asyncpg

from customer_core.config import Settings
from customer_core.context import Context, connect_db
from customer_core.db import jobs as jobs_db

LAST_QUERY = "SELECT query FROM pg_stat_activity WHERE pid = $1"
ADVISORY_LOCKS = "SELECT count(*) FROM pg_locks WHERE pid = $1 AND locktype = 'advisory'"


async def observer(settings: Settings) -> asyncpg.Connection:
    return await connect_db(settings)


async def test_reads_and_transactions_are_given_back_without_a_reset(
    ctx: Context, settings: Settings
) -> None:
    marker = f"SELECT 'read-{uuid.uuid4()}'"
    watch = await observer(settings)
    try:
        async with ctx.pool.acquire() as conn:
            pid = conn.get_server_pid()
            await conn.fetchval(marker)
        assert await watch.fetchval(LAST_QUERY, pid) == marker
        async with ctx.pool.acquire() as conn:
            pid = conn.get_server_pid()
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(42)")
        assert await watch.fetchval(LAST_QUERY, pid) == "COMMIT;"
        assert await watch.fetchval(ADVISORY_LOCKS, pid) == 0
    finally:
        await watch.close()


async def test_a_job_lock_never_outlives_its_connections_release(
    ctx: Context, settings: Settings
) -> None:
    job = f"job-{uuid.uuid4()}"
    async with ctx.pool.acquire() as conn:
        pid = conn.get_server_pid()
        assert await jobs_db.try_lock(conn, job)
        # Given back without unlocking: as when the holder is cancelled mid-unlock.
    watch = await observer(settings)
    try:
        assert await watch.fetchval(ADVISORY_LOCKS, pid) == 0
        assert "pg_advisory_unlock_all" in await watch.fetchval(LAST_QUERY, pid)
        assert await jobs_db.try_lock(watch, job)  # free for the next runner
    finally:
        await watch.close()
    # The reset was once: the connection's next plain use is not reset again.
    marker = f"SELECT 'after-{uuid.uuid4()}'"
    for _ in range(ctx.settings.db.pool_max):
        async with ctx.pool.acquire() as conn:
            if conn.get_server_pid() == pid:
                await conn.fetchval(marker)
                break
    watch = await observer(settings)
    try:
        assert await watch.fetchval(LAST_QUERY, pid) == marker
    finally:
        await watch.close()
