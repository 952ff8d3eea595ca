"""`customer-service audit CUSTOMER`: who did what to a customer, newest first.

CUSTOMER is `customers/{id}` or the bare id. One JSON object per line, so the
output pipes into jq; ids and caller identities only, no personal data.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from customer_core.config import load_settings
from customer_core.context import Context
from customer_core.domain import names
from customer_core.errors import ConfigError, InvalidArgument
from customer_core.usecases.audit import AuditEntry, list_customer_audit


def _line(e: AuditEntry) -> str:
    return json.dumps(
        {
            "time": e.occurred_at.isoformat() if e.occurred_at else None,
            "caller_kind": e.caller_kind,
            "caller": e.caller_subject,
            "caller_family": str(e.caller_family) if e.caller_family else None,
            "method": e.method,
            "customer": f"customers/{e.customer_id}" if e.customer_id else None,
            "family": f"families/{e.family_id}" if e.family_id else None,
            "outcome": e.outcome,
            "request_id": e.request_id or None,
            "acting_for": f"customers/{e.acting_for}" if e.acting_for else None,
        }
    )


async def show(customer: str, limit: int) -> int:
    value = customer if customer.startswith("customers/") else f"customers/{customer}"
    try:
        customer_id = names.customer_id(value, "CUSTOMER")
    except InvalidArgument as exc:
        raise ConfigError("CUSTOMER", exc.problem) from None
    ctx = await Context.create(load_settings())
    try:
        for entry in await list_customer_audit(ctx, customer_id, limit):
            print(_line(entry))
    finally:
        await ctx.aclose()
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="customer-service audit", description="calls with effects on one customer"
    )
    parser.add_argument("customer", metavar="CUSTOMER", help="customers/{id} or the id")
    parser.add_argument("--limit", type=int, default=100, help="newest N rows (default 100)")
    opts = parser.parse_args(argv)
    if not 1 <= opts.limit <= 10_000:
        parser.error("--limit must be from 1 to 10000")
    return asyncio.run(show(opts.customer, opts.limit))
