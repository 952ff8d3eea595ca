"""Statistics updates and activity events: domain values -> protobuf messages."""

from __future__ import annotations

from customer_api.convert import timestamp
from customer_api.convert.customers import EnumMap
from customer_core.domain import names
from customer_core.domain.loyalty import Tier
from customer_core.domain.streams import ACTIVITY_KINDS, StatsSnapshot
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.usecases.activity import Entry

TIER = EnumMap[pb.Tier.ValueType](pb.Tier.DESCRIPTOR, "TIER", [t.value for t in Tier])
KIND = EnumMap[pb.ActivityKind.ValueType](
    pb.ActivityKind.DESCRIPTOR, "ACTIVITY_KIND", ACTIVITY_KINDS
)


def tier_to_pb(word: str) -> pb.Tier.ValueType:
    # An unknown word (a newer writer) reads as "not set" rather than failing the stream.
    try:
        return TIER.to_pb(word or None)
    except KeyError:
        return pb.TIER_UNSPECIFIED


def stats_to_pb(s: StatsSnapshot) -> pb.CustomerStats:
    return pb.CustomerStats(
        customer=names.customer_name(s.customer_id),
        order_count=s.order_count,
        completed_count=s.completed_count,
        cancelled_count=s.cancelled_count,
        total_spent=pb.Money(currency_code=s.currency_code, amount_minor=s.total_spent_minor),
        payment_count=s.payment_count,
        top_drinks=[
            pb.DrinkCount(drink_id=d.drink_id, drink_name=d.drink_name, count=d.count)
            for d in s.top_drinks
        ],
        peak_hours=[
            pb.PeakHour(day_of_week=h.day_of_week, hour=h.hour, count=h.count) for h in s.peak_hours
        ],
        first_order_time=timestamp(s.first_order_at),
        last_order_time=timestamp(s.last_order_at),
    )


def stats_update_to_pb(s: StatsSnapshot) -> pb.CustomerStatsUpdate:
    return pb.CustomerStatsUpdate(
        stats=stats_to_pb(s),
        points_balance=s.points_balance,
        tier=tier_to_pb(s.tier),
        update_time=timestamp(s.read_at),
    )


def event_to_pb(subscription_id: str, e: Entry) -> pb.ActivityFeedResponse:
    a = e.activity
    try:
        kind = KIND.to_pb(a.kind or None)
    except KeyError:
        kind = pb.ACTIVITY_KIND_UNSPECIFIED
    return pb.ActivityFeedResponse(
        event=pb.ActivityEvent(
            subscription_id=subscription_id,
            cursor=e.cursor,
            kind=kind,
            customer=names.customer_name(a.customer_id),
            family=names.family_name(a.family_id) if a.family_id else "",
            order_id=a.order_id,
            points=a.points,
            reward=names.reward_name(a.reward_id) if a.reward_id else "",
            tier=tier_to_pb(a.tier),
            campaign=a.campaign,
            occur_time=timestamp(a.occurred_at),
        )
    )


def ack_to_pb(
    subscription_id: str, subscribed: bool, truncated: bool = False
) -> pb.ActivityFeedResponse:
    return pb.ActivityFeedResponse(
        ack=pb.SubscriptionAck(
            subscription_id=subscription_id, subscribed=subscribed, replay_truncated=truncated
        )
    )


def pong_to_pb(nonce: str) -> pb.ActivityFeedResponse:
    return pb.ActivityFeedResponse(pong=pb.Pong(nonce=nonce))
