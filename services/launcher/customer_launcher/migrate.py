"""`customer-service migrate`: apply the numbered migrations (safe to run concurrently)."""

from __future__ import annotations

import argparse
import asyncio

from customer_core.config import load_settings
from customer_core.usecases import schema


async def migrate(check_only: bool) -> int:
    settings = load_settings()
    if check_only:
        await schema.check(settings)
        print("schema is up to date")
        return 0
    applied = await schema.migrate(settings)
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
