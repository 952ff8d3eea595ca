"""ImportCustomers opens new customers' accounts with their opening balance in one statement:
the balance is always what the ledger holds, whoever the points belong to."""

from __future__ import annotations

from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2 as pb
from tests.integration.streams.conftest import Stub


def person(ext: str, family: str, points: int, role: int = pb.FAMILY_ROLE_ADULT) -> pb.ImportRecord:
    return pb.ImportRecord(
        external_id=ext,
        family_external_id=family,
        family_display_name=f"Family {family}",
        username=f"user_{ext}".replace("-", "_"),
        display_name=f"Person {ext}",
        role=role,
        opening_points=points,
    )


async def run(stub: Stub, *records: pb.ImportRecord) -> pb.ImportCustomersResponse:
    return await stub.ImportCustomers(iter([pb.ImportCustomersRequest(records=list(records))]))


async def ledger_matches_balances(ctx: Context) -> bool:
    async with ctx.pool.acquire() as conn:
        off = await conn.fetchval(
            "SELECT count(*) FROM loyalty_accounts a WHERE a.balance <> "
            "(SELECT coalesce(sum(points), 0) FROM loyalty_points p WHERE p.account_id = a.id)"
        )
    return bool(off == 0)


async def test_new_accounts_open_with_their_opening_entry_and_nothing_else(
    ctx: Context, stub: Stub
) -> None:
    reply = await run(stub, person("a-1", "fa", 120), person("a-2", "fa", 0))
    assert (reply.created, reply.rejected) == (2, 0)
    async with ctx.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT c.external_id, a.balance, a.lifetime_points, a.last_activity_at IS NOT NULL"
            " AS active, (SELECT array_agg(p.idempotency_key || '/' || p.kind || '/' || p.points"
            " || '/' || p.source || '/' || p.source_ref || '/' || p.reason)"
            " FROM loyalty_points p WHERE p.account_id = a.id) AS entries"
            " FROM customers c JOIN loyalty_accounts a ON a.customer_id = c.id"
            " ORDER BY c.external_id"
        )
    assert [tuple(r) for r in rows] == [
        (
            "a-1",
            120,
            120,
            True,
            ["import:a-1:opening/adjust/120/system/a-1/opening balance (import)"],
        ),
        ("a-2", 0, 0, False, None),  # no opening balance: an empty account, no entry
    ]
    assert await ledger_matches_balances(ctx)


async def test_a_deleted_customer_imported_again_gets_no_second_opening_balance(
    ctx: Context, stub: Stub
) -> None:
    await run(stub, person("d-1", "fd", 75))
    async with ctx.pool.acquire() as conn:
        first = await conn.fetchval("SELECT id FROM customers WHERE external_id = 'd-1'")
    await stub.DeleteCustomer(pb.DeleteCustomerRequest(name=f"customers/{first}"))
    # Deleting frees the external id: the same record is a new person now.
    reply = await run(stub, person("d-1", "fd", 75))
    assert (reply.created, reply.rejected) == (1, 0)
    async with ctx.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT c.id, a.balance, a.lifetime_points FROM customers c"
            " JOIN loyalty_accounts a ON a.customer_id = c.id WHERE c.external_id = 'd-1'"
        )
        openings = await conn.fetchval(
            "SELECT count(*) FROM loyalty_points WHERE idempotency_key = 'import:d-1:opening'"
        )
    assert row["id"] != first
    # The opening key was spent by the first import: the account opens empty.
    assert (row["balance"], row["lifetime_points"], openings) == (0, 0, 1)
    assert await ledger_matches_balances(ctx)


async def test_a_new_member_of_a_pooled_family_puts_its_opening_balance_in_the_wallet(
    ctx: Context, stub: Stub
) -> None:
    await run(stub, person("p-1", "fp", 10, pb.FAMILY_ROLE_OWNER))
    async with ctx.pool.acquire() as conn:
        owner, family = await conn.fetchrow(
            "SELECT id, family_id FROM customers WHERE external_id = 'p-1'"
        )
    await stub.SetFamilyWallet(
        pb.SetFamilyWalletRequest(
            family=f"families/{family}", pooled=True, requested_by=f"customers/{owner}"
        )
    )
    reply = await run(stub, person("p-2", "fp", 30), person("p-3", "other", 5))
    assert (reply.created, reply.rejected) == (2, 0)
    async with ctx.pool.acquire() as conn:
        wallet = await conn.fetchval(
            "SELECT balance FROM loyalty_accounts WHERE family_id = $1", family
        )
        own = await conn.fetch(
            "SELECT c.external_id, a.balance FROM customers c"
            " JOIN loyalty_accounts a ON a.customer_id = c.id"
            " WHERE c.external_id IN ('p-2', 'p-3') ORDER BY 1"
        )
        member = await conn.fetchval(
            "SELECT member_id FROM loyalty_points WHERE idempotency_key = 'import:p-2:opening'"
        )
    # The pooled member's points went to the wallet (with the owner's 10 swept
    # in when pooling); its own account exists, empty. The other family's
    # member opened its own account with its points.
    assert wallet == 40
    assert [tuple(r) for r in own] == [("p-2", 0), ("p-3", 5)]
    assert member is not None
    assert await ledger_matches_balances(ctx)
