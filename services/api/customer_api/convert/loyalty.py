"""Loyalty, rewards and redemptions: domain values -> protobuf messages."""

from __future__ import annotations

import uuid

from customer_api.convert import timestamp
from customer_api.convert.customers import EnumMap, customer_to_pb, dietary_to_pb, role_to_pb
from customer_api.convert.favorites import favorite_to_pb
from customer_core.domain import names
from customer_core.domain.loyalty import KINDS, SOURCES, AccountSummary, PostedEntry, Tier
from customer_core.domain.rewards import Ineligible, Redemption, RedemptionState, Reward
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.usecases.hot_path import OrderContext, Validation
from customer_core.usecases.quotes import Quote

TIER = EnumMap[pb.Tier.ValueType](pb.Tier.DESCRIPTOR, "TIER", [t.value for t in Tier])
KIND = EnumMap[pb.TransactionKind.ValueType](
    pb.TransactionKind.DESCRIPTOR, "TRANSACTION_KIND", KINDS
)
SOURCE = EnumMap[pb.TransactionSource.ValueType](
    pb.TransactionSource.DESCRIPTOR, "TRANSACTION_SOURCE", SOURCES
)
STATE = EnumMap[pb.RedemptionState.ValueType](
    pb.RedemptionState.DESCRIPTOR, "REDEMPTION_STATE", [s.value for s in RedemptionState]
)
INELIGIBLE = EnumMap[pb.IneligibleReason.ValueType](
    pb.IneligibleReason.DESCRIPTOR, "INELIGIBLE_REASON", [r.value for r in Ineligible]
)


def tier_to_pb(tier: Tier | None) -> pb.Tier.ValueType:
    return TIER.to_pb(tier.value if tier else None)


def account_to_pb(s: AccountSummary, customer_id: uuid.UUID) -> pb.LoyaltyAccount:
    a = s.account
    owner = names.family_name(a.family_id) if a.family_id else names.customer_name(customer_id)
    return pb.LoyaltyAccount(
        name=f"{owner}/loyaltyAccount",
        balance=a.balance,
        held_points=s.held_points,
        lifetime_points=a.lifetime_points,
        tier=tier_to_pb(s.tier),
        tier_points=s.tier_points,
        next_tier=tier_to_pb(s.next_tier),
        points_to_next_tier=s.points_to_next_tier,
        expiring_points=s.expiry.points,
        expire_time=timestamp(s.expiry.at),
        pooled=a.pooled,
        member_contribution=s.member_contribution,
    )


def entry_to_pb(e: PostedEntry) -> pb.LoyaltyTransaction:
    return pb.LoyaltyTransaction(
        id=str(e.id),
        kind=KIND.to_pb(e.kind),
        points=e.points,
        reason=e.reason,
        source=SOURCE.to_pb(e.source),
        source_ref=e.source_ref or "",
        member=names.customer_name(e.member_id) if e.member_id else "",
        campaign=e.campaign,
        create_time=timestamp(e.create_time),
    )


def reward_to_pb(r: Reward) -> pb.Reward:
    m = pb.Reward(
        name=names.reward_name(r.id),
        display_name=r.display_name,
        description=r.description,
        points_cost=r.points_cost,
        available_from=timestamp(r.available_from),
        available_until=timestamp(r.available_until),
        min_tier=tier_to_pb(r.min_tier),
        active=r.active,
    )
    if r.discount_kind == "amount_off":
        m.amount_off.CopyFrom(
            pb.Money(currency_code=r.currency_code or "", amount_minor=r.discount_value)
        )
    elif r.discount_kind == "percent_off":
        m.percent_off = r.discount_value
    else:
        m.free_drink_id = r.free_drink_id or ""
    return m


def redemption_to_pb(r: Redemption) -> pb.Redemption:
    return pb.Redemption(
        name=names.redemption_name(r.id),
        customer=names.customer_name(r.customer_id),
        reward=names.reward_name(r.reward_id),
        order_id=r.order_id,
        points=r.points,
        state=STATE.to_pb(r.state.value),
        create_time=timestamp(r.create_time),
        hold_expire_time=timestamp(r.hold_expires_at),
    )


def quote_to_pb(q: Quote) -> pb.QuoteRedemptionResponse:
    return pb.QuoteRedemptionResponse(
        redeemable=q.redeemable,
        reason=INELIGIBLE.to_pb(q.reason.value if q.reason else None),
        points_cost=q.reward.points_cost,
        balance_before=q.balance_before,
        balance_after=q.balance_after,
        reward=reward_to_pb(q.reward),
    )


def validation_to_pb(v: Validation) -> pb.ValidateCustomerResponse:
    if v.invalid_reason is not None or v.customer is None:
        reason = (
            pb.ValidateCustomerResponse.INVALID_REASON_DELETED
            if v.invalid_reason == "deleted"
            else pb.ValidateCustomerResponse.INVALID_REASON_NOT_FOUND
        )
        return pb.ValidateCustomerResponse(valid=False, invalid_reason=reason)
    c = v.customer
    return pb.ValidateCustomerResponse(
        valid=True,
        family=names.family_name(c.family_id),
        display_name=c.display_name or "",
        dietary=dietary_to_pb(c.dietary),
        role=role_to_pb(c.role),
    )


def order_context_to_pb(oc: OrderContext) -> pb.OrderContext:
    return pb.OrderContext(
        customer=customer_to_pb(oc.customer),
        usual_order=favorite_to_pb(oc.usual) if oc.usual else None,
        points_balance=oc.balance,
        tier=tier_to_pb(oc.tier),
        redeemable_rewards=[
            pb.RedeemableReward(reward=reward_to_pb(r), requires_approval=approval)
            for r, approval in oc.rewards
        ],
        wallet_pooled=oc.pooled,
    )
