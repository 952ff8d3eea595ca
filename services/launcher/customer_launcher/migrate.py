"""`customer-service migrate`: apply the numbered migrations (safe to run concurrently)."""

from __future__ import annotations

import argparse
import asyncio

from customer_core.config import load_settings
from customer_core.context import connect_db
from customer_core.db.migrate import apply_migrations, check_schema


async def migrate(check_only: bool) -> int:
    settings = load_settings()
    conn = await connect_db(settings)
    try:
        if check_only:
            await check_schema(conn)
            print("schema is up to date")
            return 0
        applied = await apply_migrations(conn)
    finally:
        await conn.close()
    if applied:
        for m in applied:
            print(f"applied {m.version:04d}_{m.name}")
    else:
        print("nothing to apply: schema is up to date")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="customer-service migrate")
    parser.add_argument("--check", action="store_true", help="only check; change nothing")
    opts = parser.parse_args(argv)
    return asyncio.run(migrate(opts.check))
