"""Consumers as deployed: N `customer-service consumer` processes in one group.

The broker splits the topics' partitions between them. Progress is read from
the group's committed offsets on the broker: a consumer commits a batch's
offsets only after its database transaction commits, so a committed record is
a record in committed database state. (Counting the inbox table instead cost
PostgreSQL ~2.7 ms per count at 100,000 rows, 4.4 µs per event at the rate
polled: a tenth of the database's CPU, taken from the consumers measured.) The
clock runs from the moment 5% of the records are committed (every member has
joined and the first rebalances are over) until all of them are; then the
inbox is counted once, to check every unique event was applied exactly once.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import asyncpg
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from children import stop_children
from cpu import cpu_by_process
from profiling import command, finish

from customer_core.config import KafkaSettings
from customer_core.context.kafka import client_options

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


def _spawn(
    n: int, env: dict[str, str], log_dir: Path, profile: bool
) -> list[subprocess.Popen[bytes]]:
    cli = Path(sys.executable).with_name("customer-service")
    procs = []
    for i in range(n):
        argv = [str(cli), "consumer"]
        if profile:
            argv = command(argv, profile_path(log_dir, i))
        with (log_dir / f"consumer-{i}.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    argv,
                    env={**env, "CONSUMER_HEALTH_PORT": "0"},
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
    return procs


def profile_path(log_dir: Path, i: int) -> Path:
    return log_dir / f"consumer-{i}.profile.txt"


async def consume_with_processes(
    n: int,
    env: dict[str, str],
    dsn: str,
    kafka: KafkaSettings,
    partitions: list[TopicPartition],
    records: int,
    unique: int,
    log_dir: Path,
    within: float = 600,
    profile: bool = False,
) -> tuple[float, int, Counter[str]]:
    """(seconds from when 5% of the `records` were committed to the last, how many
    were committed in that time, CPU seconds meanwhile by process name, see
    cpu_by_process). Raises unless the inbox then holds exactly `unique` events.
    With `profile`, each consumer runs under py-spy (profile_path(log_dir, i))."""
    procs = _spawn(n, env, log_dir, profile)
    conn = await asyncpg.connect(dsn)
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        deadline = time.monotonic() + within
        waits: Counter[str] = Counter()
        started_at, done_at_start, cpu_start = None, 0, Counter[str]()
        coordinator = await admin.find_coordinator(kafka.group_id)
        next_poll, next_sample, done = 0.0, 0.0, 0
        while True:
            now = time.perf_counter()
            # Each poll costs the broker and this process ~0.2 ms: every 10 ms it
            # took 2 µs per event from each. Poll every 100 ms, every 10 ms near
            # the end; the rate uses the counts seen, so only the end needs precision.
            if now >= next_poll:
                # Partitions named: Tansu drops the connection on "all the group's offsets".
                committed = await admin.list_consumer_group_offsets(
                    kafka.group_id, coordinator, partitions
                )
                done = sum(max(0, m.offset) for m in committed.values())
                now = time.perf_counter()
                next_poll = now + (0.01 if done >= 0.9 * records else 0.1)
                if started_at is None and done >= START_SHARE * records:
                    started_at, done_at_start = now, done
                    cpu_start = cpu_by_process("bench")
                if done >= records:
                    break
            elif started_at is not None and now >= next_sample:
                # Every 50 ms: ~100 samples a run are plenty, and each costs the
                # database a scan of every backend's state.
                next_sample = now + 0.05
                for row in await conn.fetch(_ACTIVITY):
                    waits[row[0]] += 1
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a consumer exited; see {log_dir}/consumer-*.log")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{done:,} of {records:,} records after {within:.0f}s")
            await asyncio.sleep(0.01)
        cpu = cpu_by_process("bench")
        cpu.subtract(cpu_start)
        assert started_at is not None
        applied = await conn.fetchval("SELECT count(*) FROM processed_events")
        if applied != unique:
            raise RuntimeError(f"{applied:,} events applied, {unique:,} expected")
        total = sum(waits.values()) or 1
        print(
            "  consumers' database sessions while consuming (sampled): "
            + ", ".join(f"{k} {v / total:.0%}" for k, v in waits.most_common(6))
        )
        return now - started_at, done - done_at_start, cpu
    finally:
        await admin.close()
        await conn.close()
        if profile:
            for i, p in enumerate(procs):
                finish(p, profile_path(log_dir, i))
        stop_children(procs, 20)
