"""The family wallet: domain values -> protobuf messages."""

from __future__ import annotations

from customer_api.convert import timestamp
from customer_api.convert.loyalty import redemption_to_pb, reward_to_pb
from customer_core.domain import names
from customer_core.domain.rewards import Redemption
from customer_core.domain.wallet import Approval
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.usecases.wallet import Cap
from customer_core.usecases.wallet_approvals import Decided


def approval_to_pb(r: Redemption, a: Approval) -> pb.Redemption:
    """A redemption with its approval: when it lapses (while pending), who decided."""
    m = redemption_to_pb(r)
    if a.decision is None:
        m.approval_expire_time.FromDatetime(a.expires_at)
    if a.decided_by is not None:
        m.decided_by = names.customer_name(a.decided_by)
    return m


def approved_to_pb(d: Decided) -> pb.RedeemRewardResponse:
    return pb.RedeemRewardResponse(
        redemption=approval_to_pb(d.redemption, d.approval),
        reward=reward_to_pb(d.reward),
        balance_after=d.redemption.balance_after,
    )


def cap_to_pb(c: Cap) -> pb.MemberSpendingCap:
    return pb.MemberSpendingCap(
        customer=names.customer_name(c.customer_id),
        weekly_points=c.weekly_points,
        spent_this_week=c.spent_this_week,
        week_start_time=timestamp(c.week_start),
    )
