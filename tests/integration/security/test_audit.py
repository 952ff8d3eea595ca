"""The audit trail: who did what to which customer, refused attempts included,
queryable by customer id (`customer-service audit`)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from customer_api.security.tokens import APP, OPERATOR, ORDER_SERVICE
from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2 as pb
from tests.integration.security.conftest import (
    ADULT_I,
    CHILD_I,
    HOUSEHOLD,
    OWNER_I,
    Family,
    Serve,
    Signer,
    make_family,
)


async def _rows(ctx: Context, want: int, customer: str) -> list[dict[str, object]]:
    # The row is written as the call ends; poll rather than race it.
    cid = customer.split("/")[1]
    for _ in range(200):
        async with ctx.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM audit_log WHERE customer_id = $1 ORDER BY id", cid
            )
        if len(rows) >= want:
            return [dict(r) for r in rows]
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {want} audit rows, found {len(rows)}")


async def test_calls_with_effects_and_refusals_are_audited(
    serve: Serve,
    signer: Signer,
    families: tuple[Family, Family],
    ctx: Context,
    env: dict[str, str],
) -> None:
    own, other = families
    running = await serve()
    app = running.stub(signer.token(APP, "family-app", own.id))
    orders = running.stub(signer.token(ORDER_SERVICE, "orders"))
    ops = running.stub(signer.token(OPERATOR, "ops-alice"))
    target = other.member(0)

    # Reads are not audited; calls with effects are, whatever the outcome.
    await ops.GetCustomer(pb.GetCustomerRequest(name=target))
    update = pb.UpdateCustomerRequest(
        customer=pb.Customer(name=target, display_name="Secret Name"),
        update_mask=FieldMask(paths=["display_name"]),
        idempotency_key="audit-1",
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await app.UpdateCustomer(update)  # another family's member
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orders.AdjustPoints(
            pb.AdjustPointsRequest(customer=target, points=100, reason="x", idempotency_key="a1")
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await ops.UpdateCustomer(update)

    rows = await _rows(ctx, 3, target)
    seen = [(r["caller_kind"], r["caller_subject"], r["method"], r["outcome"]) for r in rows]
    assert seen == [
        ("app", "family-app", "UpdateCustomer", "PERMISSION_DENIED"),
        ("order-service", "orders", "AdjustPoints", "PERMISSION_DENIED"),
        ("operator", "ops-alice", "UpdateCustomer", "OK"),
    ]
    assert rows[0]["caller_family"] == own.id
    # Ids only: the new display name is nowhere in the log.
    assert "Secret Name" not in repr(rows)

    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "customer_launcher.cli", "audit", target],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(x["caller"], x["method"], x["outcome"]) for x in lines] == [
        ("ops-alice", "UpdateCustomer", "OK"),
        ("orders", "AdjustPoints", "PERMISSION_DENIED"),
        ("family-app", "UpdateCustomer", "PERMISSION_DENIED"),
    ]
    assert {x["customer"] for x in lines} == {target}


async def test_the_audit_command_names_a_bad_customer(env: dict[str, str]) -> None:
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "customer_launcher.cli", "audit", "not-an-id"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "CUSTOMER" in out.stderr


async def test_the_member_a_call_acted_for_is_recorded(
    serve: Serve, signer: Signer, ctx: Context
) -> None:
    """An operator names the member it acts for; a member acts as itself: both
    land in the row's acting_for."""

    household = await make_family(ctx, "Audit", roles=HOUSEHOLD)
    running = await serve()
    child, owner = household.member(CHILD_I), household.member(OWNER_I)
    operator = running.stub(signer.token(OPERATOR, "ops-1"))
    await operator.SetMemberSpendingCap(
        pb.SetMemberSpendingCapRequest(customer=child, weekly_points=50, set_by=owner)
    )
    adult = running.stub(signer.token(APP, household.member(ADULT_I), household.id))
    await adult.SetMemberSpendingCap(
        pb.SetMemberSpendingCapRequest(customer=child, weekly_points=60)
    )
    rows = await _rows(ctx, 2, child)
    assert [(r["caller_kind"], r["acting_for"]) for r in rows] == [
        (OPERATOR, household.members[OWNER_I]),
        (APP, household.members[ADULT_I]),
    ]
