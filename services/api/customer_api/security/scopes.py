"""The one scope table: every CustomerService RPC, who may call it, and which
request field names the resource an app caller must own.

Caller kinds (the `kind` claim of a token):
- `order-service`: the Order Service's hot path and the reads it needs;
- `app`: an app backend acting for one family (its `family_id` claim); it
  reaches only that family's members, favorites, statistics, points and feed;
- `operator`: everything, including import, point adjustments, deletion and
  the rewards catalogue.

A test walks every RPC in the proto against this table, so an RPC added to the
contract without a row here fails the build rather than being open.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from customer_api.security.tokens import APP, OPERATOR, ORDER_SERVICE


class Target(Enum):
    """What kind of resource name a field holds, for family scoping."""

    CUSTOMER = "customers/{id}"
    FAMILY = "families/{id}"
    FAVORITE = "customers/{id}/favorites/{id}"
    # GetCustomerRequest: `name` or `username`, whichever is set.
    CUSTOMER_KEY = "customer name or username"
    # ActivityFeedRequest: each Subscribe's `customer` or `family`, checked as the
    # client sends it, inside the stream.
    SUBSCRIPTION = "subscribe.customer or subscribe.family"


@dataclass(frozen=True)
class Rule:
    kinds: frozenset[str]
    # Dotted path of the request field an app caller's family must own; None:
    # nothing family-owned is named (or app callers may not call it at all).
    field: str | None = None
    target: Target | None = None
    # An empty `field` means "no particular resource" (e.g. an optional filter);
    # app callers are then allowed only when `optional` is set.
    optional: bool = False
    # Calls with effects are written to the audit log.
    effects: bool = False


ALL = frozenset({ORDER_SERVICE, APP, OPERATOR})
APP_OPS = frozenset({APP, OPERATOR})
SERVICE_OPS = frozenset({ORDER_SERVICE, OPERATOR})
OPS = frozenset({OPERATOR})

C, F, FAV = Target.CUSTOMER, Target.FAMILY, Target.FAVORITE

# Open to every caller, authenticated or not (probes, load balancers, grpcurl).
OPEN_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection")
OPEN_METHODS = frozenset({"HealthCheck"})

SCOPES: dict[str, Rule] = {
    "HealthCheck": Rule(ALL),
    # Families
    "CreateFamily": Rule(OPS, effects=True),
    "GetFamily": Rule(APP_OPS, "name", F),
    "ListFamilyMembers": Rule(APP_OPS, "family", F),
    # Customers
    "CreateCustomer": Rule(APP_OPS, "customer.family", F, effects=True),
    "GetCustomer": Rule(ALL, "key", Target.CUSTOMER_KEY),
    "UpdateCustomer": Rule(APP_OPS, "customer.name", C, effects=True),
    "DeleteCustomer": Rule(OPS, effects=True),
    "ListCustomers": Rule(APP_OPS, "family", F),
    # Favorites
    "AddFavorite": Rule(APP_OPS, "parent", C, effects=True),
    "ListFavorites": Rule(ALL, "parent", C),
    "UpdateFavorite": Rule(APP_OPS, "favorite.name", FAV, effects=True),
    "RemoveFavorite": Rule(APP_OPS, "name", FAV, effects=True),
    "SetUsualOrder": Rule(APP_OPS, "favorite", FAV, effects=True),
    "GetUsualOrder": Rule(ALL, "customer", C),
    # Statistics
    "GetCustomerStats": Rule(APP_OPS, "customer", C),
    "WatchCustomerStats": Rule(APP_OPS, "customer", C),
    # Loyalty
    "GetLoyaltyAccount": Rule(ALL, "customer", C),
    "ListLoyaltyTransactions": Rule(APP_OPS, "customer", C),
    "ListRewards": Rule(ALL, "customer", C, optional=True),
    "QuoteRedemption": Rule(ALL, "customer", C),
    "RedeemReward": Rule(SERVICE_OPS, effects=True),
    "ReverseRedemption": Rule(SERVICE_OPS, effects=True),
    "AdjustPoints": Rule(OPS, effects=True),
    # The Order Service's hot path
    "ValidateCustomer": Rule(SERVICE_OPS),
    "GetOrderContext": Rule(SERVICE_OPS),
    # Streams: the feed is scoped per Subscribe message, inside the stream.
    "ImportCustomers": Rule(OPS, effects=True),
    "ActivityFeed": Rule(APP_OPS, "subscribe", Target.SUBSCRIPTION),
    # Family wallet: a family's app acts through its adults (checked by the use cases).
    "SetFamilyWallet": Rule(APP_OPS, "family", F, effects=True),
    "ApproveRedemption": Rule(APP_OPS, "approver", C, effects=True),
    "DeclineRedemption": Rule(APP_OPS, "approver", C, effects=True),
    "ListPendingApprovals": Rule(APP_OPS, "family", F),
    "SetMemberSpendingCap": Rule(APP_OPS, "customer", C, effects=True),
}


def rule_for(method: str) -> Rule | None:
    """The rule for a short method name; None (deny) for anything not in the table."""
    return SCOPES.get(method)
