"""Demo data: two families, and seeding twice creates nothing new."""

from __future__ import annotations

from customer_core.context import Context
from customer_core.usecases.demo import seed_demo


async def test_seed_demo_is_idempotent(ctx: Context) -> None:
    first = await seed_demo(ctx)
    assert first == "created 2 families (Rivera and Chen) and 5 members"
    second = await seed_demo(ctx)
    assert second == "the Rivera and Chen families are already there"
    async with ctx.pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT f.display_name, c.role, c.preferences, c.dietary_restrictions
               FROM customers c JOIN families f ON f.id = c.family_id"""
        )
        accounts = await conn.fetchval("SELECT count(*) FROM loyalty_accounts")
    by_family: dict[str, list[str]] = {}
    for r in rows:
        by_family.setdefault(r["display_name"], []).append(r["role"])
        assert r["preferences"], "every demo member has preferences"
    assert sorted(by_family["Rivera"]) == ["adult", "child", "owner"]
    assert sorted(by_family["Chen"]) == ["adult", "owner"]
    assert any(r["dietary_restrictions"] for r in rows)
    assert accounts == 6  # one per member, and the Rivera family's pooled wallet
