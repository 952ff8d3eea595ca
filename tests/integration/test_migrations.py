"""Migrations: idempotent, safe concurrently, and every process refuses a stale schema."""

from __future__ import annotations

import asyncio

import pytest

from customer_core.config import Settings, load_settings
from customer_core.context import Context, connect_db
from customer_core.db.migrate import apply_migrations, check_schema, load_migrations
from customer_core.errors import SchemaOutOfDate
from customer_launcher.devstack import DevStack


@pytest.fixture
async def empty_settings(stack: DevStack, base_env: dict[str, str]) -> Settings:
    assert stack.postgres is not None
    stack.postgres.psql("DROP DATABASE IF EXISTS empty_db WITH (FORCE)")
    stack.postgres.psql("CREATE DATABASE empty_db")
    return load_settings({**base_env, "DB_NAME": "empty_db"})


async def test_two_processes_migrating_at_once_apply_each_migration_once(
    empty_settings: Settings,
) -> None:
    conns = [await connect_db(empty_settings) for _ in range(3)]
    try:
        results = await asyncio.gather(*(apply_migrations(c) for c in conns))
        applied = sorted(m.version for r in results for m in r)
        assert applied == [m.version for m in load_migrations()]
        assert await apply_migrations(conns[0]) == []
        await check_schema(conns[0])
    finally:
        for c in conns:
            await c.close()


async def test_a_process_refuses_an_unmigrated_database(empty_settings: Settings) -> None:
    with pytest.raises(SchemaOutOfDate, match="customer-service migrate"):
        await Context.create(empty_settings)


async def test_a_missing_migration_is_named(settings: Settings) -> None:
    conn = await connect_db(settings)
    try:
        newest = load_migrations()[-1]
        await conn.execute("DELETE FROM schema_migrations WHERE version = $1", newest.version)
        with pytest.raises(SchemaOutOfDate, match=newest.name):
            await check_schema(conn)
    finally:
        await conn.close()


async def test_an_edited_migration_is_refused(settings: Settings) -> None:
    conn = await connect_db(settings)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
        with pytest.raises(SchemaOutOfDate, match="changed after it was applied"):
            await check_schema(conn)
    finally:
        await conn.close()


async def test_a_newer_schema_is_refused(settings: Settings) -> None:
    conn = await connect_db(settings)
    try:
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'future', 'x')"
        )
        with pytest.raises(SchemaOutOfDate, match="older than the schema"):
            await check_schema(conn)
    finally:
        await conn.close()


async def test_the_ledger_is_append_only(settings: Settings) -> None:
    conn = await connect_db(settings)
    try:
        fam = await conn.fetchval(
            "INSERT INTO families (id, display_name) VALUES (gen_random_uuid(), 'F') RETURNING id"
        )
        cust = await conn.fetchval(
            "INSERT INTO customers (id, family_id, username) VALUES (gen_random_uuid(), $1, 'u')"
            " RETURNING id",
            fam,
        )
        acct = await conn.fetchval(
            "INSERT INTO loyalty_accounts (id, customer_id) VALUES (gen_random_uuid(), $1)"
            " RETURNING id",
            cust,
        )
        await conn.execute(
            "INSERT INTO loyalty_points (account_id, kind, points, reason, source, idempotency_key)"
            " VALUES ($1, 'adjust', 5, 'test', 'operator', 'k1')",
            acct,
        )
        with pytest.raises(Exception, match="append-only"):
            await conn.execute("UPDATE loyalty_points SET points = 6")
        with pytest.raises(Exception, match="append-only"):
            await conn.execute("DELETE FROM loyalty_points")
    finally:
        await conn.close()
