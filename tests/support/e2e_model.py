"""A plain model of the order traffic the e2e simulator sends: what the service must end with.

Written from the contract (events.proto, customer.proto) and the documented
earning rules, not from the service's code: an order counts once when its
placement arrives, earns floor(total x POINTS_PER_CURRENCY_UNIT) points per
whole currency unit on completion, gives them back when it is also cancelled,
and a reward redeemed for it costs its points unless the order is cancelled.
The simulator only produces traffic whose outcome does not depend on arrival
order (see e2e_simulator), so the model can be exact.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

MINOR_PER_UNIT = 100  # USD, the only currency the simulator uses


@dataclass
class Order:
    order_id: str
    customer: str  # `customers/{id}`
    placed_at: datetime
    items: list[tuple[str, str, int]]  # drink id, drink name, quantity
    total_minor: int
    payments: dict[str, int] = field(default_factory=dict)  # payment id -> amount
    completed: bool = False
    cancelled: bool = False
    reward_cost: int = 0  # points of a reward redeemed for this order


@dataclass
class Member:
    name: str  # `customers/{id}`
    account: str  # the customer, or `families/{id}` for a pooled wallet
    opening_points: int = 0


@dataclass(frozen=True)
class Stats:
    order_count: int
    completed_count: int
    cancelled_count: int
    spent_minor: int
    payment_count: int
    drinks: tuple[tuple[str, int], ...]  # every drink id and its count, sorted
    hours: tuple[tuple[int, int, int], ...]  # (ISO day, hour, count), sorted
    first_order: datetime | None
    last_order: datetime | None


@dataclass(frozen=True)
class Balance:
    balance: int
    held: int
    lifetime: int
    tier_points: int  # earned in the tier window, net of give-backs, plus adjustments


@dataclass
class Model:
    points_per_unit: int
    members: dict[str, Member] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)

    def earned(self, order: Order) -> int:
        if not order.completed:
            return 0
        return order.total_minor * self.points_per_unit // MINOR_PER_UNIT

    def net_points(self, order: Order) -> int:
        """What the order leaves on its ledger: earned unless cancelled, less its reward."""
        earned = 0 if order.cancelled else self.earned(order)
        spent = order.reward_cost if not order.cancelled else 0
        return earned - spent

    def stats(self, customer: str) -> Stats:
        mine = [o for o in self.orders.values() if o.customer == customer]
        drinks: Counter[str] = Counter()
        hours: Counter[tuple[int, int]] = Counter()
        for o in mine:
            for drink_id, _name, qty in o.items:
                drinks[drink_id] += qty
            hours[(o.placed_at.isoweekday(), o.placed_at.hour)] += 1
        placed = [o.placed_at for o in mine]
        return Stats(
            order_count=len(mine),
            completed_count=sum(o.completed for o in mine),
            cancelled_count=sum(o.cancelled for o in mine),
            spent_minor=sum(sum(o.payments.values()) for o in mine),
            payment_count=sum(len(o.payments) for o in mine),
            drinks=tuple(sorted(drinks.items())),
            hours=tuple(sorted((d, h, n) for (d, h), n in hours.items())),
            first_order=min(placed) if placed else None,
            last_order=max(placed) if placed else None,
        )

    def balance(self, account: str) -> Balance:
        members = [m for m in self.members.values() if m.account == account]
        names = {m.name for m in members}
        orders = [o for o in self.orders.values() if o.customer in names]
        opening = sum(m.opening_points for m in members)
        return Balance(
            balance=opening + sum(self.net_points(o) for o in orders),
            # Every redeemed order ends completed (captured) or cancelled (released).
            held=0,
            lifetime=opening + sum(self.earned(o) for o in orders),
            tier_points=opening + sum(0 if o.cancelled else self.earned(o) for o in orders),
        )

    def history(self, order_id: str) -> tuple[bool, bool, int, int, int]:
        """(completed, cancelled, total, paid, net points earned) of one order_history row."""
        o = self.orders[order_id]
        earned = 0 if o.cancelled else self.earned(o)
        return (o.completed, o.cancelled, o.total_minor, sum(o.payments.values()), earned)

    def accounts(self) -> dict[str, str]:
        """Each account and one member through whom the API shows it."""
        out: dict[str, str] = {}
        for m in self.members.values():
            out.setdefault(m.account, m.name)
        return out
