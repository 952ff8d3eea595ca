"""Numbered SQL migrations, applied under an advisory lock.

`apply_migrations` is safe to run twice or from two processes at once: the
second waits for the lock, then finds nothing left to do. `check_schema` is what
every process runs at start-up: it refuses to serve on a schema that is older
(or newer) than the code, or whose applied files were edited afterwards.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from customer_core.db import Conn
from customer_core.db.sessions import mark_session_state
from customer_core.errors import SchemaOutOfDate

# Any fixed 64-bit number, the same in every process of this service.
MIGRATION_LOCK_ID = 0x43555354_4D494752  # "CUSTMIGR"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""
APPLIED = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
RECORD = "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"
TABLE_EXISTS = "SELECT to_regclass('schema_migrations') IS NOT NULL"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """Every migration shipped with the package, in version order."""
    found: list[Migration] = []
    folder = resources.files("customer_core.db.migrations")
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise SchemaOutOfDate(f"two migrations share a version number: {versions}")
    return found


async def apply_migrations(conn: Conn) -> list[Migration]:
    """Apply what is missing, each migration in its own transaction; returns what was applied."""
    applied_now: list[Migration] = []
    mark_session_state(conn)
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        await conn.execute(CREATE_TABLE)
        done = {row["version"]: row for row in await conn.fetch(APPLIED)}
        for migration in load_migrations():
            row = done.get(migration.version)
            if row is not None:
                _check_unchanged(migration, row["checksum"])
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(RECORD, migration.version, migration.name, migration.checksum)
            applied_now.append(migration)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    return applied_now


async def check_schema(conn: Conn) -> None:
    """Raise SchemaOutOfDate unless the database has exactly the shipped migrations."""
    expected = load_migrations()
    if not await conn.fetchval(TABLE_EXISTS):
        raise SchemaOutOfDate(
            "the database has no schema yet: run `customer-service migrate` first"
        )
    done = {row["version"]: row for row in await conn.fetch(APPLIED)}
    missing = [m for m in expected if m.version not in done]
    if missing:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in missing)
        raise SchemaOutOfDate(
            f"the database schema is out of date (missing {names}): "
            "run `customer-service migrate` first"
        )
    newest = expected[-1].version if expected else 0
    unknown = sorted(v for v in done if v > newest)
    if unknown:
        raise SchemaOutOfDate(
            f"the database has migrations this code does not know ({unknown}): "
            "this build is older than the schema; deploy the newer build"
        )
    for migration in expected:
        _check_unchanged(migration, done[migration.version]["checksum"])


def _check_unchanged(migration: Migration, checksum: str) -> None:
    if checksum != migration.checksum:
        raise SchemaOutOfDate(
            f"migration {migration.version:04d}_{migration.name} was changed after it was "
            "applied; add a new migration instead of editing an applied one"
        )
