"""LoyaltyRPCs: accounts, the ledger, rewards and redemptions (translation only)."""

from __future__ import annotations

from customer_api.convert.loyalty import (
    account_to_pb,
    entry_to_pb,
    quote_to_pb,
    redemption_to_pb,
    reward_to_pb,
)
from customer_api.servicers.base import RpcBase, RpcContext
from customer_core.domain import names
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.usecases import loyalty, quotes, rewards


class LoyaltyRPCs(RpcBase):
    async def GetLoyaltyAccount(
        self, request: pb.GetLoyaltyAccountRequest, context: RpcContext
    ) -> pb.LoyaltyAccount:
        customer_id = names.customer_id(request.customer)
        return account_to_pb(await loyalty.get_account(self.ctx, customer_id), customer_id)

    async def ListLoyaltyTransactions(
        self, request: pb.ListLoyaltyTransactionsRequest, context: RpcContext
    ) -> pb.ListLoyaltyTransactionsResponse:
        customer_id = names.customer_id(request.customer)
        page = await loyalty.list_transactions(
            self.ctx, customer_id, request.page_size, request.page_token
        )
        return pb.ListLoyaltyTransactionsResponse(
            transactions=[entry_to_pb(e) for e in page.entries],
            next_page_token=page.next_page_token,
        )

    async def ListRewards(
        self, request: pb.ListRewardsRequest, context: RpcContext
    ) -> pb.ListRewardsResponse:
        customer_id = names.customer_id(request.customer) if request.customer else None
        page = await rewards.list_rewards(
            self.ctx, customer_id, request.page_size, request.page_token
        )
        return pb.ListRewardsResponse(
            rewards=[reward_to_pb(r) for r in page.rewards], next_page_token=page.next_page_token
        )

    async def QuoteRedemption(
        self, request: pb.QuoteRedemptionRequest, context: RpcContext
    ) -> pb.QuoteRedemptionResponse:
        quote = await quotes.quote_redemption(
            self.ctx,
            names.customer_id(request.customer),
            names.reward_id(request.reward),
            request.order_id,
        )
        return quote_to_pb(quote)

    async def RedeemReward(
        self, request: pb.RedeemRewardRequest, context: RpcContext
    ) -> pb.RedeemRewardResponse:
        done = await rewards.redeem_reward(
            self.ctx,
            names.customer_id(request.customer),
            names.reward_id(request.reward),
            request.order_id,
            request.idempotency_key,
        )
        return pb.RedeemRewardResponse(
            redemption=redemption_to_pb(done.redemption),
            reward=reward_to_pb(done.reward),
            balance_after=done.redemption.balance_after,
        )

    async def ReverseRedemption(
        self, request: pb.ReverseRedemptionRequest, context: RpcContext
    ) -> pb.Redemption:
        redemption = await rewards.reverse_redemption(
            self.ctx,
            names.redemption_id(request.redemption),
            request.reason,
            request.idempotency_key,
        )
        return redemption_to_pb(redemption)

    async def AdjustPoints(
        self, request: pb.AdjustPointsRequest, context: RpcContext
    ) -> pb.LoyaltyTransaction:
        entry = await loyalty.adjust_points(
            self.ctx,
            names.customer_id(request.customer),
            request.points,
            request.reason,
            request.idempotency_key,
        )
        return entry_to_pb(entry)
