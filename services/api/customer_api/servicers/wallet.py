"""WalletRPCs: the family wallet's switch, child approvals and caps (translation only)."""

from __future__ import annotations

from customer_api.convert.customers import family_to_pb
from customer_api.convert.wallet import approval_to_pb, approved_to_pb, cap_to_pb
from customer_api.servicers.base import RpcBase, RpcContext
from customer_core.domain import names
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.usecases import wallet, wallet_approvals


class WalletRPCs(RpcBase):
    async def SetFamilyWallet(
        self, request: pb.SetFamilyWalletRequest, context: RpcContext
    ) -> pb.Family:
        done = await wallet.set_wallet(
            self.ctx,
            names.family_id(request.family),
            request.pooled,
            names.customer_id(request.requested_by, "requested_by"),
            request.idempotency_key,
        )
        return family_to_pb(done.family)

    async def ApproveRedemption(
        self, request: pb.ApproveRedemptionRequest, context: RpcContext
    ) -> pb.RedeemRewardResponse:
        done = await wallet_approvals.approve(
            self.ctx,
            names.redemption_id(request.redemption),
            names.customer_id(request.approver, "approver"),
            request.idempotency_key,
        )
        return approved_to_pb(done)

    async def DeclineRedemption(
        self, request: pb.DeclineRedemptionRequest, context: RpcContext
    ) -> pb.Redemption:
        done = await wallet_approvals.decline(
            self.ctx,
            names.redemption_id(request.redemption),
            names.customer_id(request.approver, "approver"),
            request.reason,
            request.idempotency_key,
        )
        return approval_to_pb(done.redemption, done.approval)

    async def ListPendingApprovals(
        self, request: pb.ListPendingApprovalsRequest, context: RpcContext
    ) -> pb.ListPendingApprovalsResponse:
        page = await wallet_approvals.list_pending(
            self.ctx, names.family_id(request.family), request.page_size, request.page_token
        )
        return pb.ListPendingApprovalsResponse(
            redemptions=[approval_to_pb(r, a) for r, a in page.pending],
            next_page_token=page.next_page_token,
        )

    async def SetMemberSpendingCap(
        self, request: pb.SetMemberSpendingCapRequest, context: RpcContext
    ) -> pb.MemberSpendingCap:
        cap = await wallet.set_cap(
            self.ctx,
            names.customer_id(request.customer),
            request.weekly_points,
            names.customer_id(request.set_by, "set_by"),
            request.idempotency_key,
        )
        return cap_to_pb(cap)
