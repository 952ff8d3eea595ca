"""The one scope table: every CustomerService RPC, who may call it, and which
request field names the resource an app caller must own.

Caller kinds (the `kind` claim of a token):
- `order-service`: the Order Service's hot path and the reads it needs;
- `app`: the mobile app acting as one person, a member of one family (`sub`
  the customer, `family_id` its family); what it may do depends on the
  member's role, read from the database on every call:
  - a child reaches only itself: its profile, favorites, statistics, points,
    rewards and quotes (it asks for redemptions through an order; they wait
    for an adult's approval);
  - an adult acts for every member of its family, approves, declines and sets
    caps, but does not change roles or the wallet;
  - the owner does all of that and changes roles and the wallet;
  - the family's service account (an app token whose `sub` is no customer,
    where AUTH_FAMILY_SERVICE_ACCOUNTS allows it) acts like an adult, and
    names in the request the member on whose behalf it acts (`approver`,
    `requested_by`, `set_by`), who must be of its family and allowed the call;
- `operator`: everything, including import, point adjustments, deletion and
  the rewards catalogue; it too names the member it acts for.

Fields that say who acts (`actor`) are taken from a member's token: a member
naming someone else there is PERMISSION_DENIED.

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


# What an app caller is: a member by role, or the family's service account.
OWNER, ADULT, CHILD = "owner", "adult", "child"
FAMILY_ACCOUNT = "family-account"
APP_ROLES = (OWNER, ADULT, CHILD, FAMILY_ACCOUNT)
FAMILY_REACH, OWN_REACH = "family", "own"


@dataclass(frozen=True)
class Rule:
    # Caller kinds other than app that may call (order-service, operator).
    services: frozenset[str]
    # Dotted path of the request field an app caller's family must own; None:
    # nothing family-owned is named (or app callers may not call it at all).
    field: str | None = None
    target: Target | None = None
    # An empty `field` means "no particular resource" (e.g. an optional filter);
    # app callers are then allowed only when `optional` is set.
    optional: bool = False
    # Calls with effects are written to the audit log.
    effects: bool = False
    # App roles that reach every member of their family, and those that reach
    # only their own customer.
    family: frozenset[str] = frozenset()
    own: frozenset[str] = frozenset()
    # The request field naming who acts: a member's own id, from its token.
    actor: str | None = None
    # Whether the request can set a member's role (only an owner may change one).
    sets_role: bool = False

    @property
    def kinds(self) -> frozenset[str]:
        return self.services | ({APP} if self.family or self.own else frozenset())

    def reach(self, role: str) -> str | None:
        """How far an app caller of this role reaches; None: not at all."""
        if role in self.family:
            return FAMILY_REACH
        return OWN_REACH if role in self.own else None


SERVICE_OPS = frozenset({ORDER_SERVICE, OPERATOR})
OPS = frozenset({OPERATOR})

# App roles: who acts for the whole family; the owner (or the account naming it).
FAMILY = frozenset({OWNER, ADULT, FAMILY_ACCOUNT})
OWNERS = frozenset({OWNER, FAMILY_ACCOUNT})
SELF = frozenset({CHILD})

C, F, FAV = Target.CUSTOMER, Target.FAMILY, Target.FAVORITE

# Open to every caller, authenticated or not (probes, load balancers, grpcurl).
OPEN_SERVICES = (
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
)
OPEN_METHODS = frozenset({"HealthCheck"})

SCOPES: dict[str, Rule] = {
    "HealthCheck": Rule(SERVICE_OPS, family=FAMILY, own=SELF),
    # Families
    "CreateFamily": Rule(OPS, effects=True),
    "GetFamily": Rule(OPS, "name", F, family=FAMILY),
    "ListFamilyMembers": Rule(OPS, "family", F, family=FAMILY),
    # Customers
    "CreateCustomer": Rule(OPS, "customer.family", F, effects=True, family=FAMILY, sets_role=True),
    "GetCustomer": Rule(SERVICE_OPS, "key", Target.CUSTOMER_KEY, family=FAMILY, own=SELF),
    "UpdateCustomer": Rule(OPS, "customer.name", C, effects=True, family=FAMILY, sets_role=True),
    "DeleteCustomer": Rule(OPS, effects=True),
    "ListCustomers": Rule(OPS, "family", F, family=FAMILY),
    # Favorites
    "AddFavorite": Rule(OPS, "parent", C, effects=True, family=FAMILY),
    "ListFavorites": Rule(SERVICE_OPS, "parent", C, family=FAMILY, own=SELF),
    "UpdateFavorite": Rule(OPS, "favorite.name", FAV, effects=True, family=FAMILY),
    "RemoveFavorite": Rule(OPS, "name", FAV, effects=True, family=FAMILY),
    "SetUsualOrder": Rule(OPS, "favorite", FAV, effects=True, family=FAMILY),
    "GetUsualOrder": Rule(SERVICE_OPS, "customer", C, family=FAMILY, own=SELF),
    # Statistics
    "GetCustomerStats": Rule(OPS, "customer", C, family=FAMILY, own=SELF),
    "WatchCustomerStats": Rule(OPS, "customer", C, family=FAMILY, own=SELF),
    # Loyalty
    "GetLoyaltyAccount": Rule(SERVICE_OPS, "customer", C, family=FAMILY, own=SELF),
    "ListLoyaltyTransactions": Rule(OPS, "customer", C, family=FAMILY, own=SELF),
    "ListRewards": Rule(SERVICE_OPS, "customer", C, optional=True, family=FAMILY, own=SELF),
    "QuoteRedemption": Rule(SERVICE_OPS, "customer", C, family=FAMILY, own=SELF),
    "RedeemReward": Rule(SERVICE_OPS, effects=True),
    "ReverseRedemption": Rule(SERVICE_OPS, effects=True),
    "AdjustPoints": Rule(OPS, effects=True),
    # The Order Service's hot path
    "ValidateCustomer": Rule(SERVICE_OPS),
    "GetOrderContext": Rule(SERVICE_OPS),
    # Streams: the feed is scoped per Subscribe message, inside the stream.
    "ImportCustomers": Rule(OPS, effects=True),
    "ActivityFeed": Rule(OPS, "subscribe", Target.SUBSCRIPTION, family=FAMILY, own=SELF),
    # Family wallet: who decides is the caller itself (a member) or the member
    # the family's account or an operator names.
    "SetFamilyWallet": Rule(OPS, "family", F, effects=True, family=OWNERS, actor="requested_by"),
    "ApproveRedemption": Rule(OPS, "approver", C, effects=True, family=FAMILY, actor="approver"),
    "DeclineRedemption": Rule(OPS, "approver", C, effects=True, family=FAMILY, actor="approver"),
    "ListPendingApprovals": Rule(OPS, "family", F, family=FAMILY),
    "SetMemberSpendingCap": Rule(OPS, "customer", C, effects=True, family=FAMILY, actor="set_by"),
}


def rule_for(method: str) -> Rule | None:
    """The rule for a short method name; None (deny) for anything not in the table."""
    return SCOPES.get(method)
