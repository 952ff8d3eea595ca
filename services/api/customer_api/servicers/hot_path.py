"""OrderServiceRPCs: the Order Service's hot path (translation only).

The use cases hand back cached, already encoded responses, and they go out
as they are (`Encoded`): a cache hit parses nothing here.
"""

from __future__ import annotations

from customer_api.convert.loyalty import order_context_to_pb, validation_to_pb
from customer_api.rpc import Encoded
from customer_api.servicers.base import RpcBase, RpcContext
from customer_core.domain import names
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.usecases import hot_path
from customer_core.usecases.hot_path import OrderContext, Validation


def _encode_validation(v: Validation) -> bytes:
    return validation_to_pb(v).SerializeToString()


def _encode_context(oc: OrderContext) -> bytes:
    return order_context_to_pb(oc).SerializeToString()


class OrderServiceRPCs(RpcBase):
    async def ValidateCustomer(
        self, request: pb.ValidateCustomerRequest, context: RpcContext
    ) -> Encoded:
        customer_id = names.customer_id(request.customer)
        return Encoded(await hot_path.validate_customer(self.ctx, customer_id, _encode_validation))

    async def GetOrderContext(
        self, request: pb.GetOrderContextRequest, context: RpcContext
    ) -> Encoded:
        customer_id = names.customer_id(request.customer)
        return Encoded(await hot_path.order_context(self.ctx, customer_id, _encode_context))
