"""Consumers as deployed: N `customer-service consumer` processes in one group.

The broker splits the topics' partitions between them; the clock runs from the
moment 5% of the unique events are committed (every member has joined and the
first rebalances are over) until all of them are, read from the inbox table.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import asyncpg
from children import stop_children
from cpu import cpu_by_process

START_SHARE = 0.05
# What the consumers' sessions are doing: on the CPU, or waiting and for what.
_ACTIVITY = """
SELECT CASE WHEN state = 'idle in transaction' THEN 'idle in transaction (client side)'
            WHEN wait_event IS NULL THEN 'running'
            ELSE wait_event_type || ':' || wait_event END
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND backend_type = 'client backend' AND state <> 'idle'
"""


def _spawn(n: int, env: dict[str, str], log_dir: Path) -> list[subprocess.Popen[bytes]]:
    cli = Path(sys.executable).with_name("customer-service")
    procs = []
    for i in range(n):
        with (log_dir / f"consumer-{i}.log").open("wb") as log:
            procs.append(subprocess.Popen(
                [str(cli), "consumer"], env={**env, "CONSUMER_HEALTH_PORT": "0"},
                stdout=subprocess.DEVNULL, stderr=log,
            ))  # fmt: skip
    return procs


async def consume_with_processes(
    n: int, env: dict[str, str], dsn: str, unique: int, log_dir: Path, within: float = 600
) -> tuple[float, int, Counter[str]]:
    """(seconds from when 5% of the unique events were done to the last, how many
    were done in that time, CPU seconds meanwhile by process name, see cpu_by_process)."""
    procs = _spawn(n, env, log_dir)
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + within
        waits: Counter[str] = Counter()
        started_at, done_at_start, cpu_start = None, 0, Counter[str]()
        next_count, done = 0.0, 0
        while True:
            now = time.perf_counter()
            # Counting the inbox costs PostgreSQL ~4 ms at 100,000 rows: every 10 ms
            # it took a fifth of a core from the consumers being measured. Count
            # every 100 ms, every 10 ms near the end; the rate uses the counts seen.
            if now >= next_count:
                done = await conn.fetchval("SELECT count(*) FROM processed_events")
                now = time.perf_counter()
                next_count = now + (0.01 if done >= 0.9 * unique else 0.1)
                if started_at is None and done >= START_SHARE * unique:
                    started_at, done_at_start = now, done
                    cpu_start = cpu_by_process("bench")
                if done >= unique:
                    break
            elif started_at is not None:
                for row in await conn.fetch(_ACTIVITY):
                    waits[row[0]] += 1
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a consumer exited; see {log_dir}/consumer-*.log")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{done:,} of {unique:,} events after {within:.0f}s")
            await asyncio.sleep(0.01)
        cpu = cpu_by_process("bench")
        cpu.subtract(cpu_start)
        assert started_at is not None
        total = sum(waits.values()) or 1
        print("  consumers' database sessions while consuming (sampled): " + ", ".join(
            f"{k} {v / total:.0%}" for k, v in waits.most_common(6)))  # fmt: skip
        return now - started_at, done - done_at_start, cpu
    finally:
        await conn.close()
        stop_children(procs, 20)
