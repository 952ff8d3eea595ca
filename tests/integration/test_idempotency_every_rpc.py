"""Every RPC that takes an `idempotency_key` keeps its promise, walked from the proto itself.

For each such RPC: a call; someone else's later change (where one makes sense);
a replay with the same key answers exactly what the first call did and changes
nothing (the later change stands: no stale intent re-applied); the same key
with different parameters is FAILED_PRECONDITION. A new RPC with an
`idempotency_key` field and no row here fails `test_every_keyed_rpc_has_a_row`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from customer_core.context import Context
from customer_core.domain import names
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.integration.wallet.conftest import FREE_COFFEE, Family, create_family
from tests.support.ledger import give

Stub = customer_pb2_grpc.CustomerServiceStub
SERVICE = pb.DESCRIPTOR.services_by_name["CustomerService"]


def keyed_rpcs() -> set[str]:
    return {m.name for m in SERVICE.methods if "idempotency_key" in m.input_type.fields_by_name}


@dataclass
class Case:
    first: Message  # the request (with its key)
    different: Message  # same key, other parameters
    state: Callable[[], Awaitable[Any]]  # what the call's effect is visible as
    later: Callable[[], Awaitable[object]] | None = None  # someone else's later change


def sql(ctx: Context, query: str, *args: object) -> Callable[[], Awaitable[Any]]:
    async def read() -> Any:
        async with ctx.pool.acquire() as conn:
            return [tuple(r) for r in await conn.fetch(query, *args)]

    return read


C, F, R = names.customer_name, names.family_name, names.redemption_name
KEY = "k-every-rpc-1"


async def _create_family(ctx: Context, api: Stub) -> Case:
    return Case(
        pb.CreateFamilyRequest(family=pb.Family(display_name="Rivera"), idempotency_key=KEY),
        pb.CreateFamilyRequest(family=pb.Family(display_name="Other"), idempotency_key=KEY),
        sql(ctx, "SELECT display_name FROM families"),
    )


async def _create_customer(ctx: Context, api: Stub) -> Case:
    fam = await create_family(ctx)

    def req(username: str) -> pb.CreateCustomerRequest:
        return pb.CreateCustomerRequest(
            customer=pb.Customer(family=F(fam.id), username=username, display_name="Ana"),
            idempotency_key=KEY,
        )

    return Case(req("ana_new"), req("bea_new"), sql(ctx, "SELECT username FROM customers"))


def _rename(cid: uuid.UUID, display_name: str, key: str = KEY) -> pb.UpdateCustomerRequest:
    return pb.UpdateCustomerRequest(
        customer=pb.Customer(name=C(cid), display_name=display_name),
        update_mask=FieldMask(paths=["display_name"]),
        idempotency_key=key,
    )


async def _update_customer(ctx: Context, api: Stub) -> Case:
    fam = await create_family(ctx)
    return Case(
        _rename(fam.owner, "First"),
        _rename(fam.owner, "Other"),
        sql(ctx, "SELECT display_name FROM customers WHERE id = $1", fam.owner),
        lambda: api.UpdateCustomer(_rename(fam.owner, "Later", "")),
    )


async def _delete_customer(ctx: Context, api: Stub) -> Case:
    fam = await create_family(ctx)
    return Case(
        pb.DeleteCustomerRequest(name=C(fam.child), idempotency_key=KEY),
        pb.DeleteCustomerRequest(name=C(fam.adult), idempotency_key=KEY),
        sql(ctx, "SELECT id FROM customers WHERE deleted_at IS NOT NULL"),
    )


def _fav(cid: uuid.UUID, drink: str, key: str = KEY) -> pb.AddFavoriteRequest:
    return pb.AddFavoriteRequest(
        parent=C(cid),
        favorite=pb.Favorite(drink_id=drink, drink_name=drink.title()),
        idempotency_key=key,
    )


async def _add_favorite(ctx: Context, api: Stub) -> Case:
    fam = await create_family(ctx)
    return Case(
        _fav(fam.owner, "latte"),
        _fav(fam.owner, "mocha"),
        sql(ctx, "SELECT drink_id FROM favorites ORDER BY drink_id"),
    )


def _refav(name: str, drink_name: str, key: str = KEY) -> pb.UpdateFavoriteRequest:
    return pb.UpdateFavoriteRequest(
        favorite=pb.Favorite(name=name, drink_name=drink_name),
        update_mask=FieldMask(paths=["drink_name"]),
        idempotency_key=key,
    )


async def _update_favorite(ctx: Context, api: Stub) -> Case:
    fam = await create_family(ctx)
    fav = await api.AddFavorite(_fav(fam.owner, "latte", ""))
    return Case(
        _refav(fav.name, "First"),
        _refav(fav.name, "Other"),
        sql(ctx, "SELECT drink_name FROM favorites"),
        lambda: api.UpdateFavorite(_refav(fav.name, "Later", "")),
    )


async def _remove_favorite(ctx: Context, api: Stub) -> Case:
    fam = await create_family(ctx)
    one = await api.AddFavorite(_fav(fam.owner, "latte", ""))
    two = await api.AddFavorite(_fav(fam.owner, "mocha", ""))
    return Case(
        pb.RemoveFavoriteRequest(name=one.name, idempotency_key=KEY),
        pb.RemoveFavoriteRequest(name=two.name, idempotency_key=KEY),
        sql(ctx, "SELECT drink_id FROM favorites ORDER BY drink_id"),
    )


async def _set_usual(ctx: Context, api: Stub) -> Case:
    fam = await create_family(ctx)
    one = await api.AddFavorite(_fav(fam.owner, "latte", ""))
    two = await api.AddFavorite(_fav(fam.owner, "mocha", ""))
    return Case(
        pb.SetUsualOrderRequest(favorite=one.name, idempotency_key=KEY),
        pb.SetUsualOrderRequest(favorite=two.name, idempotency_key=KEY),
        sql(ctx, "SELECT drink_id, is_usual FROM favorites ORDER BY drink_id"),
        lambda: api.SetUsualOrder(pb.SetUsualOrderRequest(favorite=two.name)),
    )


def _redeem(cid: uuid.UUID, order: str, key: str = KEY) -> pb.RedeemRewardRequest:
    return pb.RedeemRewardRequest(
        customer=C(cid), reward=f"rewards/{FREE_COFFEE}", order_id=order, idempotency_key=key
    )


async def _redeem_reward(ctx: Context, api: Stub) -> Case:
    fam = await create_family(ctx)
    await give(ctx, fam.owner, 300)
    held = sql(ctx, "SELECT id FROM redemptions")

    async def released_later() -> None:
        ((rid,),) = await held()
        await api.ReverseRedemption(pb.ReverseRedemptionRequest(redemption=R(rid)))

    return Case(
        _redeem(fam.owner, "o-1"),
        _redeem(fam.owner, "o-2"),
        sql(ctx, "SELECT order_id, state FROM redemptions"),
        # Released later: the retry still answers the hold it placed.
        released_later,
    )


async def _reverse_redemption(ctx: Context, api: Stub) -> Case:
    fam = await create_family(ctx)
    await give(ctx, fam.owner, 300)
    held = await api.RedeemReward(_redeem(fam.owner, "o-1", "k-setup"))
    name = held.redemption.name
    return Case(
        pb.ReverseRedemptionRequest(redemption=name, reason="changed mind", idempotency_key=KEY),
        pb.ReverseRedemptionRequest(redemption=name, reason="other", idempotency_key=KEY),
        sql(ctx, "SELECT kind, points, reason FROM loyalty_points ORDER BY id"),
    )


def _adjust(cid: uuid.UUID, points: int) -> pb.AdjustPointsRequest:
    return pb.AdjustPointsRequest(
        customer=C(cid), points=points, reason="goodwill", idempotency_key=KEY
    )


async def _adjust_points(ctx: Context, api: Stub) -> Case:
    fam = await create_family(ctx)
    return Case(
        _adjust(fam.owner, 50),
        _adjust(fam.owner, 60),
        sql(ctx, "SELECT kind, points FROM loyalty_points ORDER BY id"),
    )


def _switch(fam: Family, pooled: bool, key: str = KEY) -> pb.SetFamilyWalletRequest:
    return pb.SetFamilyWalletRequest(
        family=F(fam.id), pooled=pooled, requested_by=C(fam.owner), idempotency_key=key
    )


async def _set_family_wallet(ctx: Context, api: Stub) -> Case:
    fam = await create_family(ctx)
    await give(ctx, fam.adult, 120)
    return Case(
        _switch(fam, True),
        _switch(fam, False),
        sql(ctx, "SELECT wallet_pooled FROM families"),
        # An adult unpools again; the owner's late retry must not pool it back.
        lambda: api.SetFamilyWallet(
            pb.SetFamilyWalletRequest(family=F(fam.id), pooled=False, requested_by=C(fam.adult))
        ),
    )


async def _pending_child_redemption(ctx: Context, api: Stub) -> tuple[Family, str]:
    fam = await create_family(ctx, pooled=True)
    await give(ctx, fam.owner, 300)
    asked = await api.RedeemReward(_redeem(fam.child, "o-1", "k-setup"))
    return fam, asked.redemption.name


async def _approve(ctx: Context, api: Stub) -> Case:
    fam, name = await _pending_child_redemption(ctx, api)
    return Case(
        pb.ApproveRedemptionRequest(redemption=name, approver=C(fam.adult), idempotency_key=KEY),
        pb.ApproveRedemptionRequest(redemption=name, approver=C(fam.owner), idempotency_key=KEY),
        sql(ctx, "SELECT state FROM redemptions"),
        # Released later (the order changed): the replay answers what the approval did.
        lambda: api.ReverseRedemption(pb.ReverseRedemptionRequest(redemption=name)),
    )


async def _decline(ctx: Context, api: Stub) -> Case:
    fam, name = await _pending_child_redemption(ctx, api)

    def req(reason: str) -> pb.DeclineRedemptionRequest:
        return pb.DeclineRedemptionRequest(
            redemption=name, approver=C(fam.adult), reason=reason, idempotency_key=KEY
        )

    return Case(
        req("not today"),
        req("other"),
        sql(ctx, "SELECT decision, reason FROM redemption_approvals"),
    )


def _cap(fam: Family, points: int, key: str = KEY) -> pb.SetMemberSpendingCapRequest:
    return pb.SetMemberSpendingCapRequest(
        customer=C(fam.child), weekly_points=points, set_by=C(fam.owner), idempotency_key=key
    )


async def _set_cap(ctx: Context, api: Stub) -> Case:
    fam = await create_family(ctx, pooled=True)
    return Case(
        _cap(fam, 100),
        _cap(fam, 200),
        sql(ctx, "SELECT weekly_points FROM member_spending_caps"),
        lambda: api.SetMemberSpendingCap(_cap(fam, 300, "")),
    )


ROWS: dict[str, Callable[[Context, Stub], Awaitable[Case]]] = {
    "CreateFamily": _create_family,
    "CreateCustomer": _create_customer,
    "UpdateCustomer": _update_customer,
    "DeleteCustomer": _delete_customer,
    "AddFavorite": _add_favorite,
    "UpdateFavorite": _update_favorite,
    "RemoveFavorite": _remove_favorite,
    "SetUsualOrder": _set_usual,
    "RedeemReward": _redeem_reward,
    "ReverseRedemption": _reverse_redemption,
    "AdjustPoints": _adjust_points,
    "SetFamilyWallet": _set_family_wallet,
    "ApproveRedemption": _approve,
    "DeclineRedemption": _decline,
    "SetMemberSpendingCap": _set_cap,
}


def test_every_keyed_rpc_has_a_row() -> None:
    assert keyed_rpcs() == set(ROWS), "add a row for each RPC with an idempotency_key"


@pytest.mark.parametrize("method", sorted(keyed_rpcs()))
async def test_a_key_is_stored_replayed_and_bound_to_its_parameters(
    method: str, ctx: Context, api: Stub
) -> None:
    case = await ROWS[method](ctx, api)
    call = getattr(api, method)
    first = await call(case.first)
    if case.later is not None:
        await case.later()
    after = await case.state()
    again = await call(case.first)
    assert again == first, f"{method}: a replay answers what the first call did"
    assert await case.state() == after, f"{method}: a replay has no effect of its own"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(case.different)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION, method
    assert "idempotency_key" in (caught.value.details() or ""), method
    assert await case.state() == after, f"{method}: a conflicting call has no effect"
    if method != "CreateFamily":
        # Keys are global across methods: another method's call is another request.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await api.CreateFamily(
                pb.CreateFamilyRequest(family=pb.Family(display_name="X"), idempotency_key=KEY)
            )
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION, method
