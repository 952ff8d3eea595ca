"""CustomerRPCs: profile CRUD and listing (translation only)."""

from __future__ import annotations

from google.protobuf.empty_pb2 import Empty

from customer_api.convert.customers import customer_to_pb, profile_from_pb
from customer_api.rpc import Encoded
from customer_api.servicers.base import RpcBase, RpcContext
from customer_core.domain import names
from customer_core.domain.customers import Customer, check_username
from customer_core.errors import InvalidArgument
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.usecases import customers, erasure, families, idempotency


def _call(request: object, key: str, method: str) -> idempotency.Call | None:
    fingerprint = request.SerializeToString(deterministic=True)  # type: ignore[attr-defined]
    return idempotency.Call.of(key, method, fingerprint)


def _encode_customer(customer: Customer) -> bytes:
    return customer_to_pb(customer).SerializeToString()


class CustomerRPCs(RpcBase):
    async def CreateCustomer(
        self, request: pb.CreateCustomerRequest, context: RpcContext
    ) -> pb.Customer:
        call = _call(request, request.idempotency_key, "CreateCustomer")
        family_id = names.family_id(request.customer.family, "customer.family")
        profile = profile_from_pb(request.customer)
        customer = await customers.create_customer(self.ctx, family_id, profile, call)
        return customer_to_pb(customer)

    async def GetCustomer(
        self, request: pb.GetCustomerRequest, context: RpcContext
    ) -> pb.Customer | Encoded:
        key = request.WhichOneof("key")
        if key == "name":
            customer_id = names.customer_id(request.name, "name")
            return Encoded(await customers.get_customer(self.ctx, customer_id, _encode_customer))
        if key == "username":
            if not request.username:
                raise InvalidArgument("username", "must not be empty")
            # No stored username can break the rules, and checking first keeps
            # bytes PostgreSQL refuses (NUL) away from the query.
            username = check_username(request.username, "username")
            return customer_to_pb(await customers.get_customer_by_username(self.ctx, username))
        raise InvalidArgument("name", "set name (customers/{id}) or username")

    async def UpdateCustomer(
        self, request: pb.UpdateCustomerRequest, context: RpcContext
    ) -> pb.Customer:
        call = _call(request, request.idempotency_key, "UpdateCustomer")
        customer_id = names.customer_id(request.customer.name, "customer.name")
        patch = profile_from_pb(request.customer)
        customer = await customers.update_customer(
            self.ctx, customer_id, patch, list(request.update_mask.paths), call
        )
        return customer_to_pb(customer)

    async def DeleteCustomer(self, request: pb.DeleteCustomerRequest, context: RpcContext) -> Empty:
        call = _call(request, request.idempotency_key, "DeleteCustomer")
        customer_id = names.customer_id(request.name, "name")
        await erasure.delete_customer(self.ctx, customer_id, call)
        return Empty()

    async def ListCustomers(
        self, request: pb.ListCustomersRequest, context: RpcContext
    ) -> pb.ListCustomersResponse:
        family_id = names.family_id(request.family, "family") if request.family else None
        page = await families.list_customers(
            self.ctx, family_id, request.page_size, request.page_token
        )
        return pb.ListCustomersResponse(
            customers=[customer_to_pb(c) for c in page.customers],
            next_page_token=page.next_page_token,
        )
