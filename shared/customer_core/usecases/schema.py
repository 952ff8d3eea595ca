"""Bringing the database schema up to date, and refusing to run on one that is not.

The processes that own the schema's life (`customer-service migrate`, `dev`, the
operator's start-up check) go through here rather than to `db.migrate`, so a
service never holds a connection of its own to the migrations table.
"""

from __future__ import annotations

from customer_core.config import Settings
from customer_core.context import connect_db
from customer_core.db.migrate import Migration, apply_migrations, check_schema

__all__ = ["Migration", "check", "migrate"]


async def migrate(settings: Settings) -> list[Migration]:
    """Apply what is missing (safe from two processes at once); returns what was applied."""
    conn = await connect_db(settings)
    try:
        return await apply_migrations(conn)
    finally:
        await conn.close()


async def check(settings: Settings) -> None:
    """Raises SchemaOutOfDate unless the schema is exactly the code's."""
    conn = await connect_db(settings)
    try:
        await check_schema(conn)
    finally:
        await conn.close()
