"""ImportCustomers: idempotent by external id, set-based batches, exact rejections."""

from __future__ import annotations

from collections.abc import Iterator

from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2 as pb
from tests.integration.streams.conftest import Stub


def record(i: int, **changes: object) -> pb.ImportRecord:
    r = pb.ImportRecord(
        external_id=f"ext-{i}",
        family_external_id=f"fam-{i // 4}",
        family_display_name=f"Family {i // 4}",
        username=f"user_{i}",
        display_name=f"Person {i}",
        email=f"p{i}@example.com",
        role=pb.FAMILY_ROLE_ADULT,
        preferences=pb.Preferences(milk=pb.MILK_TYPE_OAT, extra_shots=i % 3),
        dietary=pb.Dietary(restrictions=[pb.DIETARY_RESTRICTION_VEGAN], allergies=["Peanuts"]),
        opening_points=i % 50,
    )
    if i % 10 == 0:
        r.favorites.append(
            pb.ImportFavorite(
                drink_id="latte",
                drink_name="Latte",
                customization=pb.Customization(size=pb.DRINK_SIZE_LARGE, syrups=["vanilla"]),
                is_usual=True,
            )
        )
    for key, value in changes.items():
        setattr(r, key, value)
    return r


def in_messages(
    records: list[pb.ImportRecord], per: int = 500
) -> Iterator[pb.ImportCustomersRequest]:
    for i in range(0, len(records), per):
        yield pb.ImportCustomersRequest(records=records[i : i + per])


# One kind of bad record per residue: (change, field the rejection names).
BAD = [
    ({"username": "x"}, "username"),
    ({"email": "not-an-email"}, "email"),
    ({"opening_points": -5}, "opening_points"),
    ({"external_id": ""}, "external_id"),
    ({"display_name": ""}, "display_name"),
]


async def test_a_large_import_with_one_percent_bad_rows_reports_exactly_those(
    ctx: Context, stub: Stub
) -> None:
    n = 100_000
    bad: dict[int, str] = {}
    records = []
    for i in range(n):
        if i % 100 == 37:
            change, field = BAD[(i // 100) % len(BAD)]
            records.append(record(i, **change))
            bad[i] = field
        else:
            records.append(record(i))
    # An unknown enum value is caught while converting, before validation.
    records[37].preferences.milk = 99  # type: ignore[assignment]
    bad[37] = "preferences.milk"
    reply = await stub.ImportCustomers(in_messages(records), timeout=600)
    assert (reply.received, reply.rejected) == (n, len(bad))
    assert (reply.created, reply.updated, reply.unchanged) == (n - len(bad), 0, 0)
    assert len(bad) == len(reply.rejections) == 1000
    assert {r.position: r.field for r in reply.rejections} == bad
    assert all(r.reason for r in reply.rejections)
    assert reply.rejections[1].external_id == "ext-137"
    async with ctx.pool.acquire() as conn:
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM customers) AS customers,"
            " (SELECT count(*) FROM families) AS families,"
            " (SELECT count(*) FROM loyalty_accounts) AS accounts,"
            " (SELECT count(*) FROM favorites) AS favorites,"
            " (SELECT coalesce(sum(points), 0) FROM loyalty_points) AS points,"
            " (SELECT coalesce(sum(balance), 0) FROM loyalty_accounts) AS balances"
        )
    good = [i for i in range(n) if i not in bad]
    assert counts["customers"] == counts["accounts"] == len(good)
    assert counts["favorites"] == sum(1 for i in good if i % 10 == 0)
    assert counts["points"] == counts["balances"] == sum(i % 50 for i in good)


async def test_running_the_same_import_again_changes_nothing(ctx: Context, stub: Stub) -> None:
    records = [record(i) for i in range(1200)]
    first = await stub.ImportCustomers(in_messages(records, 100))
    assert (first.created, first.rejected) == (1200, 0)
    async with ctx.pool.acquire() as conn:
        before = await conn.fetch(
            "SELECT id, update_time, (SELECT balance FROM loyalty_accounts a"
            " WHERE a.customer_id = c.id) FROM customers c ORDER BY id"
        )
    again = await stub.ImportCustomers(in_messages(records, 100))
    assert (again.received, again.created, again.updated, again.unchanged) == (1200, 0, 0, 1200)
    async with ctx.pool.acquire() as conn:
        after = await conn.fetch(
            "SELECT id, update_time, (SELECT balance FROM loyalty_accounts a"
            " WHERE a.customer_id = c.id) FROM customers c ORDER BY id"
        )
        ledger = await conn.fetchval("SELECT count(*) FROM loyalty_points")
    assert before == after
    assert ledger == sum(1 for i in range(1200) if i % 50)


async def test_changed_records_update_merge_favorites_and_post_the_opening_balance_once(
    ctx: Context, stub: Stub
) -> None:
    await stub.ImportCustomers(in_messages([record(i) for i in range(12)]))
    # ext-10 came with 10 opening points and a latte as its usual.
    changed = record(10, display_name="Renamed", opening_points=999)
    changed.favorites.append(pb.ImportFavorite(drink_id="mocha", drink_name="Mocha"))
    reply = await stub.ImportCustomers(iter([pb.ImportCustomersRequest(record=changed)]))
    assert (reply.created, reply.updated, reply.unchanged) == (0, 1, 0)
    async with ctx.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT c.display_name, a.balance,"
            " (SELECT array_agg(drink_id || ':' || is_usual ORDER BY position) FROM favorites f"
            "  WHERE f.customer_id = c.id) AS drinks"
            " FROM customers c JOIN loyalty_accounts a ON a.customer_id = c.id"
            " WHERE c.external_id = 'ext-10'"
        )
    # Renamed, the new favorite appended, the first opening balance kept.
    assert row["display_name"] == "Renamed"
    assert row["balance"] == 10
    assert row["drinks"] == ["latte:true", "mocha:false"]


async def test_conflicts_are_rejected_per_record_and_repeats_update(
    ctx: Context, stub: Stub
) -> None:
    await stub.ImportCustomers(in_messages([record(i) for i in range(8)]))
    records = [
        record(100, username="USER_1"),  # taken (case-insensitively) by ext-1
        record(1, family_external_id="fam-1"),  # ext-1 lives in fam-0: cannot move
        record(101, family_external_id="new-fam", family_display_name=""),  # unnamed new family
        record(102),
        record(102, display_name="Second time"),  # the same external id again: an update
        record(103, username="dupe"),
        record(104, username="Dupe"),  # the username just taken by ext-103
    ]
    reply = await stub.ImportCustomers(in_messages(records))
    assert {(r.position, r.field) for r in reply.rejections} == {
        (0, "username"),
        (1, "family_external_id"),
        (2, "family_display_name"),
        (6, "username"),
    }
    assert (reply.created, reply.updated, reply.unchanged, reply.rejected) == (2, 1, 0, 4)
    async with ctx.pool.acquire() as conn:
        name = await conn.fetchval(
            "SELECT display_name FROM customers WHERE external_id = 'ext-102'"
        )
    assert name == "Second time"


async def test_the_summary_lists_the_first_thousand_rejections_and_counts_all(
    stub: Stub,
) -> None:
    records = [record(i, username="?") for i in range(1500)]
    reply = await stub.ImportCustomers(in_messages(records))
    assert (reply.rejected, len(reply.rejections)) == (1500, 1000)
    assert [r.position for r in reply.rejections] == list(range(1000))


async def test_one_record_per_message_and_an_empty_stream_work(stub: Stub) -> None:
    reply = await stub.ImportCustomers(
        iter([pb.ImportCustomersRequest(record=record(i)) for i in range(3)])
    )
    assert (reply.received, reply.created) == (3, 3)
    empty = await stub.ImportCustomers(iter([]))
    assert (empty.received, empty.created, empty.rejected) == (0, 0, 0)
