"""Demo data for `customer-service dev`."""

from __future__ import annotations

from customer_core.context import Context


async def seed_demo(ctx: Context) -> str:
    """Create the demo families once; returns a one-line summary."""
    return "none yet (families and customers are being built)"
