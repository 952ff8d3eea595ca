"""The import benchmark's ceiling and CPU accounting (bench/streams.py).

The ceiling is the database's own cost of the rows: as many records as the
benchmark imports (other external ids), validated and planned before the
clock starts, then written with the import's own set-based statements
(families, customers, accounts opened with their opening entries, favorites)
on as many connections as the import keeps in flight: no gRPC, no
conversion, no validation, no reads. Import rate / ceiling is the share of
the database's write rate that survives the api's own work.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

import psutil

from customer_api.convert.imports import record_from_pb
from customer_core.config import load_settings
from customer_core.context import Context
from customer_core.db import imports as db
from customer_core.domain.imports import BATCH_SIZE, ImportRecord, Plan, check_record, plan
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.usecases.import_writes import OPENING_REASON, new_ids
from customer_core.usecases.imports import IN_FLIGHT

Prepared = tuple[list[tuple[uuid.UUID, str, str]], list[Plan], list[uuid.UUID]]


def prepare(records: Sequence[ImportRecord]) -> Prepared:
    """One batch's rows: new families, the plans of new customers, their account ids."""
    names: dict[str, str] = {}
    for r in records:
        names.setdefault(r.family_external_id, r.family_display_name)
    ordered = sorted(names.items())
    families = [(i, n, ext) for i, (ext, n) in zip(new_ids(len(ordered)), ordered, strict=True)]
    family_ids = {ext: i for i, _, ext in families}
    plans = [
        plan(r, family_ids[r.family_external_id], None, cid)
        for r, cid in zip(records, new_ids(len(records)), strict=True)
    ]
    return families, plans, new_ids(len(plans))


class WriteRate(NamedTuple):
    rate: float  # records/s
    client_us: float  # this process's CPU per record while writing
    pg_us: float  # PostgreSQL's CPU per record (0 without its postmaster's pid)


async def write_rate(
    ctx: Context, messages: Sequence[pb.ImportRecord], postmaster: int | None = None
) -> WriteRate:
    """The import's writes alone (records must be new and valid), and their CPU per record."""
    records = [check_record(record_from_pb(m, i)) for i, m in enumerate(messages)]
    batches = deque(
        prepare(records[i : i + BATCH_SIZE]) for i in range(0, len(records), BATCH_SIZE)
    )

    async def writer() -> None:
        async with ctx.pool.acquire() as conn:
            while batches:
                families, plans, account_ids = batches.popleft()
                async with conn.transaction():
                    await db.insert_families(conn, families)
                    await db.insert_customers(conn, plans)
                    await db.open_accounts(conn, plans, account_ids, OPENING_REASON)
                    await db.insert_favorites(conn, plans)

    pg = postgres_processes(postmaster) if postmaster else []
    pg0, cpu0, start = cpu_seconds(pg), time.process_time(), time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(IN_FLIGHT)))
    took, cpu = time.perf_counter() - start, time.process_time() - cpu0
    pg_cpu = cpu_seconds(postgres_processes(postmaster)) - pg0 if postmaster else 0.0
    n = len(records)
    return WriteRate(n / took, 1e6 * cpu / n, 1e6 * pg_cpu / n)


async def ceiling(
    env: dict[str, str], messages: Sequence[pb.ImportRecord], postmaster: int | None = None
) -> WriteRate:
    """write_rate on a context of its own (the benchmark's database)."""
    ctx = await Context.create(load_settings(env))
    try:
        return await write_rate(ctx, messages, postmaster)
    finally:
        await ctx.aclose()


def cpu_seconds(procs: Sequence[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def postgres_processes(postmaster: int) -> list[psutil.Process]:
    """The server and its backends and workers (those alive now)."""
    root = psutil.Process(postmaster)
    return [root, *root.children(recursive=True)]
