"""Member-level callers: the scope table by role, generated from the table and
the proto, so an RPC without a rule fails here; and the identity fields
(`approver`, `requested_by`, `set_by`) taken from a member's token."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

import grpc
import pytest
from google.protobuf import field_mask_pb2

from customer_api.security.scopes import ADULT, CHILD, FAMILY_ACCOUNT, OWNER, SCOPES
from customer_api.security.settings import SecuritySettings
from customer_api.security.tokens import APP, OPERATOR, ORDER_SERVICE
from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2 as pb
from tests.integration.security.calls import METHODS, aimed_request, status_of
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

REFUSED = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


@dataclass(frozen=True)
class As:
    """One caller of the matrix: its token, which member it names, who it acts for."""

    label: str
    kind: str
    role: str | None  # app callers only
    member: int  # the member its requests name (a child: itself)
    acts_for_owner: bool  # names the owner in `approver`, ... (a member's is its token)


CALLERS = (
    As(OWNER, APP, OWNER, OWNER_I, acts_for_owner=False),
    As(ADULT, APP, ADULT, CHILD_I, acts_for_owner=False),
    As(CHILD, APP, CHILD, CHILD_I, acts_for_owner=False),
    As(FAMILY_ACCOUNT, APP, FAMILY_ACCOUNT, CHILD_I, acts_for_owner=True),
    As(OPERATOR, OPERATOR, None, CHILD_I, acts_for_owner=True),
    As(ORDER_SERVICE, ORDER_SERVICE, None, CHILD_I, acts_for_owner=True),
)


@pytest.fixture
async def household(ctx: Context) -> Family:
    return await make_family(ctx, "Okafor", roles=HOUSEHOLD)


def token_for(signer: Signer, caller: As, family: Family) -> str:
    if caller.kind != APP:
        return signer.token(caller.kind, f"{caller.kind}-1")
    if caller.role == FAMILY_ACCOUNT:
        return signer.token(APP, "family-app", family.id)
    index = {OWNER: OWNER_I, ADULT: ADULT_I, CHILD: CHILD_I}[caller.role or ""]
    return signer.token(APP, family.member(index), family.id)


def allowed(caller: As, method: str) -> bool:
    rule = SCOPES[method]
    if caller.role is None:
        return caller.kind in rule.services
    return rule.reach(caller.role) is not None


def test_the_matrix_covers_every_rpc_of_the_proto() -> None:
    """An RPC in the contract without a row is a failure, not an open door."""
    assert set(METHODS) - set(SCOPES) == set()


@pytest.mark.parametrize("caller", CALLERS, ids=[c.label for c in CALLERS])
async def test_every_rpc_by_every_caller_follows_the_table(
    serve: Serve, signer: Signer, household: Family, caller: As
) -> None:
    running = await serve()
    stub = running.stub(token_for(signer, caller, household))
    actor = household.member(OWNER_I) if caller.acts_for_owner else None
    wrong: list[str] = []
    for method in METHODS:
        assert method in SCOPES, f"{method} has no rule in the scope table"
        request = aimed_request(method, household, caller.member, actor)
        code = await status_of(stub, method, request)
        if allowed(caller, method) and code in REFUSED:
            wrong.append(f"{method}: refused with {code.name}")
        if not allowed(caller, method) and code != grpc.StatusCode.PERMISSION_DENIED:
            wrong.append(f"{method}: expected PERMISSION_DENIED, got {code.name}")
        if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
            wrong.append(f"{method}: {code.name}")
    assert wrong == []


async def _code(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_a_child_cannot_approve_promote_itself_or_set_caps(
    serve: Serve, signer: Signer, household: Family
) -> None:
    running = await serve()
    child = running.stub(signer.token(APP, household.member(CHILD_I), household.id))
    me, parent = household.member(CHILD_I), household.member(OWNER_I)
    redemption = f"redemptions/{uuid.uuid4()}"
    calls = {
        "approve as itself": child.ApproveRedemption(
            pb.ApproveRedemptionRequest(redemption=redemption)
        ),
        "approve naming a parent": child.ApproveRedemption(
            pb.ApproveRedemptionRequest(redemption=redemption, approver=parent)
        ),
        "decline": child.DeclineRedemption(pb.DeclineRedemptionRequest(redemption=redemption)),
        "promote itself": child.UpdateCustomer(
            pb.UpdateCustomerRequest(
                customer=pb.Customer(name=me, role=pb.FAMILY_ROLE_ADULT),
                update_mask=field_mask_pb2.FieldMask(paths=["role"]),
            )
        ),
        "set its cap": child.SetMemberSpendingCap(
            pb.SetMemberSpendingCapRequest(customer=me, weekly_points=0, set_by=parent)
        ),
        "switch the wallet": child.SetFamilyWallet(
            pb.SetFamilyWalletRequest(family=household.name, pooled=True, requested_by=parent)
        ),
        "read a sibling": child.GetCustomer(pb.GetCustomerRequest(name=parent)),
    }
    codes = {what: await _code(call) for what, call in calls.items()}
    assert codes == {what: grpc.StatusCode.PERMISSION_DENIED for what in calls}
    own = await child.GetLoyaltyAccount(pb.GetLoyaltyAccountRequest(customer=me))
    assert own.name == f"{me}/loyaltyAccount"


async def test_identity_fields_come_from_the_token(
    serve: Serve, signer: Signer, household: Family, ctx: Context
) -> None:
    running = await serve()
    adult = running.stub(signer.token(APP, household.member(ADULT_I), household.id))
    child, owner = household.member(CHILD_I), household.member(OWNER_I)
    # Naming someone else as the one acting is refused ...
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await adult.SetMemberSpendingCap(
            pb.SetMemberSpendingCapRequest(customer=child, weekly_points=100, set_by=owner)
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "set_by" in (caught.value.details() or "")
    # ... and leaving it out acts as the token's member.
    cap = await adult.SetMemberSpendingCap(
        pb.SetMemberSpendingCapRequest(customer=child, weekly_points=100)
    )
    assert cap.weekly_points == 100
    async with ctx.pool.acquire() as conn:
        set_by = await conn.fetchval(
            "SELECT set_by FROM member_spending_caps WHERE customer_id = $1",
            household.members[CHILD_I],
        )
    assert set_by == household.members[ADULT_I]


async def test_only_the_owner_changes_roles_and_the_wallet(
    serve: Serve, signer: Signer, household: Family
) -> None:
    running = await serve()
    adult = running.stub(signer.token(APP, household.member(ADULT_I), household.id))
    owner = running.stub(signer.token(APP, household.member(OWNER_I), household.id))
    promote = pb.UpdateCustomerRequest(
        customer=pb.Customer(name=household.member(CHILD_I), role=pb.FAMILY_ROLE_ADULT),
        update_mask=field_mask_pb2.FieldMask(paths=["role"]),
    )
    wallet = pb.SetFamilyWalletRequest(family=household.name, pooled=True)
    add_owner = pb.CreateCustomerRequest(
        customer=pb.Customer(
            family=household.name,
            username=f"o_{uuid.uuid4().hex[:8]}",
            display_name="Another owner",
            role=pb.FAMILY_ROLE_OWNER,
        )
    )
    for call in (
        adult.UpdateCustomer(promote),
        adult.SetFamilyWallet(wallet),
        adult.CreateCustomer(add_owner),
    ):
        assert await _code(call) == grpc.StatusCode.PERMISSION_DENIED
    # The same role again is no change, and other fields are the adult's to edit.
    same = pb.UpdateCustomerRequest(
        customer=pb.Customer(
            name=household.member(CHILD_I), role=pb.FAMILY_ROLE_CHILD, display_name="Renamed"
        ),
        update_mask=field_mask_pb2.FieldMask(paths=["role", "display_name"]),
    )
    assert (await adult.UpdateCustomer(same)).display_name == "Renamed"
    assert (await owner.UpdateCustomer(promote)).role == pb.FAMILY_ROLE_ADULT
    assert (await owner.SetFamilyWallet(wallet)).wallet_pooled


async def test_a_member_token_that_names_nobody_of_the_family_is_unauthenticated(
    serve: Serve, signer: Signer, household: Family, families: tuple[Family, Family]
) -> None:
    running = await serve()
    other = families[0]
    tokens = {
        "another family's member": signer.token(APP, other.member(0), household.id),
        "no such customer": signer.token(APP, f"customers/{uuid.uuid4()}", household.id),
    }
    for what, token in tokens.items():
        stub = running.stub(token)
        code = await _code(stub.GetFamily(pb.GetFamilyRequest(name=household.name)))
        assert code == grpc.StatusCode.UNAUTHENTICATED, what


async def test_family_level_tokens_work_only_where_configured(
    serve: Serve, signer: Signer, jwt_security: SecuritySettings, household: Family
) -> None:
    strict = await serve(replace(jwt_security, family_service_accounts=False))
    token = signer.token(APP, "family-app", household.id)
    request = pb.GetFamilyRequest(name=household.name)
    assert await _code(strict.stub(token).GetFamily(request)) == grpc.StatusCode.UNAUTHENTICATED
    member = signer.token(APP, household.member(ADULT_I), household.id)
    assert (await strict.stub(member).GetFamily(request)).name == household.name
    relaxed = await serve()
    assert (await relaxed.stub(token).GetFamily(request)).name == household.name


async def test_a_role_value_outside_the_enum_is_invalid_argument_for_an_app_caller(
    serve: Serve, signer: Signer, household: Family
) -> None:
    # Found by test_fuzz: the role-change check named the enum value and an
    # unknown number (proto3 enums are open) escaped as INTERNAL.
    running = await serve()
    adult = running.stub(signer.token(APP, household.member(ADULT_I), household.id))
    for mask in (["role"], []):
        call = adult.UpdateCustomer(
            pb.UpdateCustomerRequest(
                customer=pb.Customer(name=household.member(CHILD_I), role=-1),  # type: ignore[arg-type]
                update_mask=field_mask_pb2.FieldMask(paths=mask),
            )
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "customer.role" in (caught.value.details() or "")
