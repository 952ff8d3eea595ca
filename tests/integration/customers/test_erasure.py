"""Erasure is complete: after DeleteCustomer and the purge job, no table and no Valkey
key holds any personal value a customer ever gave, through any RPC that stores one.

The search walks every column of every table in the database (and every key of
Valkey), so a table added later that keeps personal data fails this test
without anyone having to list it here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from google.protobuf.field_mask_pb2 import FieldMask

from customer_core.context import Context
from customer_core.domain.jobs import JobPolicy
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.usecases.jobs.cleanup import clean_up
from tests.integration.customers.personal_data import (
    COFFEE,
    Stub,
    find_in_database,
    find_in_valkey,
    key,
    order_cancelled,
    profile,
    v,
)

# Where a personal value may stay after erasure, and why (docs/security.md says the same):
# the opening balance an import posted is keyed by the importer's external id in the
# append-only ledger, so importing the same person again cannot post it twice.
KEPT = {
    ("loyalty_points", "source_ref", v("ext")),
    ("loyalty_points", "idempotency_key", v("ext")),
}

# Keyed RPCs whose stored response is only ids, numbers, states, times and catalog rewards
# (docs/security.md): the redemption, its approval (a decision's reason is not in it) and
# a spending cap. DeleteCustomer stores an empty response (after the walk: it runs last).
HOLDS_NO_PERSONAL_DATA = {
    "RemoveFavorite",
    "RedeemReward",
    "ApproveRedemption",
    "DeclineRedemption",
    "ReverseRedemption",
    "SetMemberSpendingCap",
}


def keyed_rpcs() -> set[str]:
    service = pb.DESCRIPTOR.services_by_name["CustomerService"]
    return {m.name for m in service.methods if "idempotency_key" in m.input_type.fields_by_name}


async def test_erasure_leaves_no_personal_value_in_any_table_or_valkey_key(
    api: Stub, ctx: Context
) -> None:
    keys: list[str] = []

    def k() -> str:
        keys.append(key())
        return keys[-1]

    family = await api.CreateFamily(
        pb.CreateFamilyRequest(family=pb.Family(display_name=v("family")), idempotency_key=k())
    )
    create = pb.CreateCustomerRequest(
        customer=profile(family.name, "owner", pb.FAMILY_ROLE_OWNER), idempotency_key=k()
    )
    owner = await api.CreateCustomer(create)
    child = await api.CreateCustomer(
        pb.CreateCustomerRequest(
            customer=profile(family.name, "child", pb.FAMILY_ROLE_CHILD), idempotency_key=k()
        )
    )
    await api.UpdateCustomer(
        pb.UpdateCustomerRequest(
            customer=pb.Customer(
                name=owner.name,
                display_name=v("newname"),
                email=f"{v('newmail')}@example.org",
                dietary=pb.Dietary(allergies=[v("newallergy")]),
            ),
            update_mask=FieldMask(paths=["display_name", "email", "dietary.allergies"]),
            idempotency_key=k(),
        )
    )

    favorite = await api.AddFavorite(
        pb.AddFavoriteRequest(
            parent=owner.name,
            favorite=pb.Favorite(
                drink_id="latte",
                drink_name=v("drink"),
                customization=pb.Customization(syrups=[v("syrup")], notes=v("notes")),
            ),
            idempotency_key=k(),
        )
    )
    await api.UpdateFavorite(
        pb.UpdateFavoriteRequest(
            favorite=pb.Favorite(
                name=favorite.name, customization=pb.Customization(notes=v("newnotes"))
            ),
            update_mask=FieldMask(paths=["customization"]),
            idempotency_key=k(),
        )
    )
    await api.SetUsualOrder(pb.SetUsualOrderRequest(favorite=favorite.name, idempotency_key=k()))
    gone = await api.AddFavorite(
        pb.AddFavoriteRequest(
            parent=child.name,
            favorite=pb.Favorite(drink_id="mocha", drink_name=v("gonedrink")),
            idempotency_key=k(),
        )
    )
    await api.RemoveFavorite(pb.RemoveFavoriteRequest(name=gone.name, idempotency_key=k()))

    await api.AdjustPoints(
        pb.AdjustPointsRequest(
            customer=owner.name, points=500, reason=v("adjust"), idempotency_key=k()
        )
    )
    await api.SetFamilyWallet(
        pb.SetFamilyWalletRequest(
            family=family.name, pooled=True, requested_by=owner.name, idempotency_key=k()
        )
    )
    asked = await api.RedeemReward(
        pb.RedeemRewardRequest(
            customer=child.name, reward=COFFEE, order_id="o-1", idempotency_key=k()
        )
    )
    assert asked.redemption.state == pb.REDEMPTION_STATE_PENDING_APPROVAL
    await api.DeclineRedemption(
        pb.DeclineRedemptionRequest(
            redemption=asked.redemption.name,
            approver=owner.name,
            reason=v("decline"),
            idempotency_key=k(),
        )
    )
    held = await api.RedeemReward(
        pb.RedeemRewardRequest(
            customer=owner.name, reward=COFFEE, order_id="o-2", idempotency_key=k()
        )
    )
    await api.ReverseRedemption(
        pb.ReverseRedemptionRequest(
            redemption=held.redemption.name, reason=v("reverse"), idempotency_key=k()
        )
    )
    approved = await api.RedeemReward(
        pb.RedeemRewardRequest(
            customer=child.name, reward=COFFEE, order_id="o-3", idempotency_key=k()
        )
    )
    await api.ApproveRedemption(
        pb.ApproveRedemptionRequest(
            redemption=approved.redemption.name, approver=owner.name, idempotency_key=k()
        )
    )
    await api.SetMemberSpendingCap(
        pb.SetMemberSpendingCapRequest(
            customer=child.name, weekly_points=300, set_by=owner.name, idempotency_key=k()
        )
    )
    await order_cancelled(ctx, uuid.UUID(owner.name.split("/")[1]))

    imported = pb.ImportRecord(
        external_id=v("ext"),
        family_external_id=v("famext"),
        family_display_name=v("impfamily"),
        username=v("impuser"),
        display_name=v("impname"),
        email=f"{v('impmail')}@example.org",
        role=pb.FAMILY_ROLE_OWNER,
        dietary=pb.Dietary(allergies=[v("impallergy")]),
        favorites=[
            pb.ImportFavorite(
                drink_id="mocha",
                drink_name=v("impdrink"),
                customization=pb.Customization(notes=v("impnotes")),
            )
        ],
        opening_points=40,
    )
    summary = await api.ImportCustomers(iter([pb.ImportCustomersRequest(record=imported)]))
    assert summary.created == 1, summary
    imported_name = (await api.GetCustomer(pb.GetCustomerRequest(username=v("impuser")))).name

    # Every read that caches or streams something about them.
    for name in (owner.name, child.name, imported_name):
        await api.GetCustomer(pb.GetCustomerRequest(name=name))
        await api.GetOrderContext(pb.GetOrderContextRequest(customer=name))
        await api.ValidateCustomer(pb.ValidateCustomerRequest(customer=name))
        await api.ListFavorites(pb.ListFavoritesRequest(parent=name))
    await api.GetUsualOrder(pb.GetUsualOrderRequest(customer=owner.name))
    await api.GetFamily(pb.GetFamilyRequest(name=family.name))

    values = [
        v(label)
        for who in ("owner", "child", "imp")
        for label in (f"{who}user", f"{who}name", f"{who}mail", f"{who}allergy")
    ] + [
        v(label)
        for label in (
            "family",
            "newname",
            "newmail",
            "newallergy",
            "drink",
            "syrup",
            "notes",
            "newnotes",
            "adjust",
            "gonedrink",
            "decline",
            "reverse",
            "cancel",
            "ext",
            "famext",
            "impfamily",
            "impdrink",
            "impnotes",
        )
    ]
    # Every RPC that stores a response under a key was called above, and each either names
    # whose personal data its response holds or is one that holds none (the search below
    # proves both). A new keyed RPC fails here until it is called with personal values.
    async with ctx.pool.acquire() as conn:
        stored = await conn.fetch(
            "SELECT method, customer_id, family_id FROM idempotency_keys WHERE key = ANY($1)", keys
        )
    assert {r["method"] for r in stored} | {"DeleteCustomer"} == keyed_rpcs()
    untagged = {r["method"] for r in stored if r["customer_id"] is None and r["family_id"] is None}
    assert untagged == HOLDS_NO_PERSONAL_DATA, untagged ^ HOLDS_NO_PERSONAL_DATA
    # The search finds what is there (it would pass vacuously otherwise).
    before = {value for _, _, value in await find_in_database(ctx, values)}
    assert before == set(values), set(values) - before
    assert {value for _, value in await find_in_valkey(ctx, values)}

    for name in (owner.name, child.name, imported_name):
        await api.DeleteCustomer(pb.DeleteCustomerRequest(name=name, idempotency_key=k()))
    outcome = await clean_up(ctx, JobPolicy(purge_grace_days=0), datetime.now(UTC) + timedelta(1))

    assert await find_in_database(ctx, values) == KEPT
    assert await find_in_valkey(ctx, values) == set()
    # The job erased each once more (DeleteCustomer leaves that pass to it).
    assert "purged 3 deleted customers" in outcome.detail, outcome.detail

    # A late retry of the original create answers the customer it made, as it is now.
    replay = await api.CreateCustomer(create)
    assert replay.name == owner.name and replay.state == pb.CUSTOMER_STATE_DELETED
    assert (replay.username, replay.display_name, replay.email) == ("", "", "")
    assert not replay.dietary.allergies
    assert (await api.GetFamily(pb.GetFamilyRequest(name=family.name))).display_name == ""
