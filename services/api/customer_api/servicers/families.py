"""FamilyRPCs: CreateFamily, GetFamily, ListFamilyMembers (translation only)."""

from __future__ import annotations

from customer_api.convert.customers import customer_to_pb, family_to_pb
from customer_api.servicers.base import RpcBase, RpcContext
from customer_core.domain import names
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.usecases import families, idempotency


class FamilyRPCs(RpcBase):
    async def CreateFamily(self, request: pb.CreateFamilyRequest, context: RpcContext) -> pb.Family:
        call = idempotency.Call.of(
            request.idempotency_key, "CreateFamily", request.SerializeToString(deterministic=True)
        )
        # wallet_pooled and member_count are output only here, as the contract says.
        family = await families.create_family(self.ctx, request.family.display_name, call)
        return family_to_pb(family)

    async def GetFamily(self, request: pb.GetFamilyRequest, context: RpcContext) -> pb.Family:
        family_id = names.family_id(request.name, "name")
        return family_to_pb(await families.get_family(self.ctx, family_id))

    async def ListFamilyMembers(
        self, request: pb.ListFamilyMembersRequest, context: RpcContext
    ) -> pb.ListFamilyMembersResponse:
        family_id = names.family_id(request.family, "family")
        page = await families.list_customers(
            self.ctx, family_id, request.page_size, request.page_token, require_family=True
        )
        return pb.ListFamilyMembersResponse(
            members=[customer_to_pb(c) for c in page.customers],
            next_page_token=page.next_page_token,
        )
