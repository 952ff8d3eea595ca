"""The one CustomerService servicer, composed from the per-area mixins.

The generated servicer is the last base: every RPC of the contract is built
by a mixin, and a new one would answer UNIMPLEMENTED until it is.

The cached hot-path reads (GetCustomer by name, ValidateCustomer,
GetOrderContext) return their response already encoded (`rpc.Encoded`), which
the generated base does not allow: the edge interceptor, which every server
installs (server.py), sends those bytes as they are.
"""

from __future__ import annotations

from customer_api.servicers.activity import ActivityRPCs
from customer_api.servicers.customers import CustomerRPCs
from customer_api.servicers.families import FamilyRPCs
from customer_api.servicers.favorites import FavoriteRPCs
from customer_api.servicers.health import HealthRPCs
from customer_api.servicers.hot_path import OrderServiceRPCs
from customer_api.servicers.imports import ImportRPCs
from customer_api.servicers.loyalty import LoyaltyRPCs
from customer_api.servicers.stats import StatsRPCs
from customer_api.servicers.wallet import WalletRPCs
from customer_core.context import Context
from customer_core.pb.customer.v1.customer_pb2_grpc import CustomerServiceServicer


class CustomerServicer(  # type: ignore[misc]
    HealthRPCs,
    FamilyRPCs,
    CustomerRPCs,
    FavoriteRPCs,
    StatsRPCs,
    LoyaltyRPCs,
    OrderServiceRPCs,
    ImportRPCs,
    ActivityRPCs,
    WalletRPCs,
    CustomerServiceServicer,
):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
