"""An Order Service simulator: the hot-path gRPC calls and the four order topics.

It knows only the contract: the generated stubs and messages of
proto/customer/v1 and the topic names. Every order it plays is recorded in an
`e2e_model.Model` before its events are produced, and it only plays orders
whose outcome does not depend on arrival order:

- a reward is redeemed (gRPC) before any of its order's events is produced, so
  the completion always finds the hold to capture;
- members who redeem got opening points covering every reward they will
  redeem, so a cancellation's give-back is never capped by a spent balance;
- every copy of an event kind carries the same payload.

Within those rules it sends what a real Order Service would get wrong:
exact duplicates, a second completion under a new event id, an order's events
in shuffled order across the four topics, and poison records (bad JSON, an
unknown schema version, an unknown customer, a body on the wrong topic, ...).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import grpc
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from google.protobuf import json_format

from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from customer_core.pb.customer.v1 import events_pb2 as ev
from tests.support.e2e_model import Member, Model, Order

T = TypeVar("T")

TOPICS = ("order.placed", "order.completed", "order.cancelled", "payment.processed")
MENU = (
    ("latte", "Caffe Latte", 475),
    ("flat-white", "Flat White", 450),
    ("cold-brew", "Cold Brew", 395),
    ("mocha", "Caffe Mocha", 525),
    ("chai", "Chai Tea Latte", 445),
    ("espresso", "Espresso", 275),
    ("matcha", "Matcha Latte", 495),
)
# Seeded catalogue rewards open to every tier at any time (0002_loyalty.sql).
REWARDS = (
    ("rewards/5eed0000-0000-4000-8000-000000000001", 25),
    ("rewards/5eed0000-0000-4000-8000-000000000002", 100),
    ("rewards/5eed0000-0000-4000-8000-000000000003", 200),
)
OPENING_POINTS = 2000
# CANCELLED too: a replica that stops cancels the calls its transport accepted
# but no handler had picked up yet (grpc core, grpc/grpc#41785: it should say
# UNAVAILABLE). The simulator never cancels its own calls, so a CANCELLED one
# came from the server, and every call made through `call` is idempotent.
RETRYABLE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
)

# The client a well-behaved Order Service runs: round robin over the replicas,
# and the channel itself retries calls a replica refused while going away. Its
# calls are idempotent, so CANCELLED (what a stopping replica answers a call its
# transport took but no handler began, grpc/grpc#41785) is retried there too:
# without it one such call in a few hundred reached the application under load.
SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{"service": "customer.v1.CustomerService"}],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"],
                },
            }
        ],
    }
)


def open_channel(ports: list[int]) -> grpc.aio.Channel:
    target = "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in ports)
    return grpc.aio.insecure_channel(
        target,
        options=[("grpc.service_config", SERVICE_CONFIG), ("grpc.enable_retries", 1)],
    )


@dataclass
class Tally:
    """What the simulator saw: calls by method, errors by method and status, events sent."""

    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    events: int = 0
    duplicates: int = 0
    poison: set[str] = field(default_factory=set)


class Simulator:
    def __init__(
        self, stub: customer_pb2_grpc.CustomerServiceStub, brokers: str, model: Model, seed: int
    ) -> None:
        self.stub = stub
        self.brokers = brokers
        self.model = model
        self.rng = random.Random(seed)
        self.run_id = uuid.uuid4().hex[:8]
        self.tally = Tally()
        self.producer: AIOKafkaProducer | None = None
        self.redeemers: dict[str, int] = {}  # member -> opening points not yet promised
        self._orders = 0
        self.base_time = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=8)

    # ---- gRPC with the retries an Order Service does on idempotent calls ----------------

    async def call(self, method: str, fn: Callable[[], Awaitable[T]], deadline: float = 60.0) -> T:
        """Call until success; RETRYABLE codes are retried (and counted)."""
        give_up = time.monotonic() + deadline
        delay = 0.1
        while True:
            self.tally.calls[method] += 1
            started = time.perf_counter()
            try:
                result = await fn()
            except grpc.aio.AioRpcError as exc:
                self.tally.errors[(method, exc.code().name)] += 1
                if exc.code() not in RETRYABLE or time.monotonic() > give_up:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            self.tally.latencies.setdefault(method, []).append(time.perf_counter() - started)
            return result

    # ---- Families and members --------------------------------------------------------------

    async def create_members(self, families: int, per_family: int) -> None:
        """`families` families of `per_family` members: one earns only, the next also redeems.

        (Wallets cannot be pooled through the API: `wallet_pooled` is output only.)
        """
        for f in range(families):
            fam = await self.call(
                "CreateFamily",
                lambda f=f: self.stub.CreateFamily(
                    pb.CreateFamilyRequest(
                        family=pb.Family(display_name=f"E2E {self.run_id} {f}"),
                        idempotency_key=f"e2e-{self.run_id}-family-{f}",
                    ),
                    timeout=20,
                ),
            )
            wallet = fam.wallet_pooled
            for m in range(per_family):
                customer = await self.call(
                    "CreateCustomer",
                    lambda f=f, m=m, fam=fam: self.stub.CreateCustomer(
                        pb.CreateCustomerRequest(
                            customer=pb.Customer(
                                family=fam.name,
                                username=f"e2e{self.run_id}f{f}m{m}",
                                display_name=f"Member {m}",
                                role=pb.FAMILY_ROLE_ADULT,
                            ),
                            idempotency_key=f"e2e-{self.run_id}-customer-{f}-{m}",
                        ),
                        timeout=20,
                    ),
                )
                account = fam.name if wallet else customer.name
                member = Member(customer.name, account)
                if not wallet and m % 2 == 1:
                    await self.call(
                        "AdjustPoints",
                        lambda name=customer.name: self.stub.AdjustPoints(
                            pb.AdjustPointsRequest(
                                customer=name,
                                points=OPENING_POINTS,
                                reason="opening balance",
                                idempotency_key=f"e2e-{self.run_id}-open-{name[-12:]}",
                            ),
                            timeout=20,
                        ),
                    )
                    member.opening_points = OPENING_POINTS
                    self.redeemers[customer.name] = OPENING_POINTS
                self.model.members[customer.name] = member

    # ---- Kafka -----------------------------------------------------------------------------------

    async def ensure_topics(self, partitions: int = 3) -> None:
        """Create the four topics if the broker lost them (Tansu keeps them in memory)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.brokers)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [t for t in TOPICS if t not in existing]
            if missing:
                await admin.create_topics([NewTopic(t, partitions, 1) for t in missing])
        except TopicAlreadyExistsError:
            pass
        finally:
            await admin.close()

    async def start(self) -> None:
        await self.ensure_topics()
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.brokers, acks="all", linger_ms=5, request_timeout_ms=10_000
        )
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    async def produce(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        """Send until the broker acknowledges (a restarting broker refuses for a while)."""
        give_up = time.monotonic() + 60
        while True:
            assert self.producer is not None
            try:
                await (await self.producer.send(topic, value, key=key, headers=headers))
                self.tally.events += 1
                return
            except KafkaError:
                if time.monotonic() > give_up:
                    raise
                await asyncio.sleep(0.5)

    # ---- Orders ------------------------------------------------------------------------

    def _event(self, kind: str, order: Order, at: datetime, **body: Any) -> ev.OrderEvent:
        e = ev.OrderEvent(
            event_id=str(uuid.uuid4()),
            event_type=kind,
            customer_id=order.customer.split("/")[1],
            order_id=order.order_id,
            schema_version=1,
        )
        e.occurred_at.FromDatetime(at)
        getattr(e, body.pop("field")).CopyFrom(body.pop("message"))
        return e

    def _items(self, order: Order) -> list[ev.OrderItem]:
        prices = {d: p for d, _n, p in MENU}
        return [
            ev.OrderItem(
                drink_id=d, drink_name=n, size="medium", quantity=q, unit_price_minor=prices[d]
            )
            for d, n, q in order.items
        ]

    async def play_order(self, member: Member) -> Order:
        """One order end to end: hot-path calls, maybe a reward, its events; the model first."""
        rng = self.rng
        name = member.name
        valid = await self.call(
            "ValidateCustomer",
            lambda: self.stub.ValidateCustomer(
                pb.ValidateCustomerRequest(customer=name), timeout=15
            ),
        )
        assert valid.valid, f"{name} should be valid"
        context = await self.call(
            "GetOrderContext",
            lambda: self.stub.GetOrderContext(pb.GetOrderContextRequest(customer=name), timeout=15),
        )
        assert context.customer.name == name
        self._orders += 1
        picks = rng.sample(MENU, rng.randint(1, 3))
        items = [(d, n, rng.randint(1, 2)) for d, n, _p in picks]
        total = sum(q * p for (_d, _n, q), (_d2, _n2, p) in zip(items, picks, strict=True))
        placed_at = self.base_time + timedelta(minutes=rng.randrange(7 * 24 * 60))
        order = Order(f"e2e-{self.run_id}-{self._orders}", name, placed_at, items, total)
        shape = rng.choices(("complete", "cancel", "complete_cancel"), (70, 12, 18))[0]
        order.completed = shape != "cancel"
        order.cancelled = shape != "complete"
        self.model.orders[order.order_id] = order
        await self._maybe_redeem(order)
        events = self._events_of(order, shape)
        await self._send_shuffled(order, events)
        return order

    async def _maybe_redeem(self, order: Order) -> None:
        left = self.redeemers.get(order.customer)
        if left is None or self.rng.random() > 0.6:
            return
        reward, cost = self.rng.choice(REWARDS)
        if cost > left:
            return
        self.redeemers[order.customer] = left - cost  # promised before the await
        request = pb.RedeemRewardRequest(
            customer=order.customer,
            reward=reward,
            order_id=order.order_id,
            idempotency_key=f"redeem-{order.order_id}",
        )
        first = await self.call("RedeemReward", lambda: self.stub.RedeemReward(request, timeout=20))
        assert first.redemption.points == cost
        order.reward_cost = cost
        if self.rng.random() < 0.3:
            # The Order Service retried after a lost response: the same hold comes back.
            again = await self.call(
                "RedeemReward", lambda: self.stub.RedeemReward(request, timeout=20)
            )
            assert again.redemption.name == first.redemption.name

    def _events_of(self, order: Order, shape: str) -> list[tuple[str, ev.OrderEvent]]:
        rng = self.rng
        at = order.placed_at
        items = self._items(order)
        placed = ev.OrderPlaced(
            items=items,
            currency_code="USD",
            subtotal_minor=order.total_minor,
            total_minor=order.total_minor,
        )
        out = [
            ("order.placed", self._event("order.placed", order, at, field="placed", message=placed))
        ]
        if shape != "cancel" or rng.random() < 0.3:
            split = rng.random() < 0.25
            parts = (
                [order.total_minor // 2, order.total_minor - order.total_minor // 2]
                if split
                else [order.total_minor]
            )
            for i, amount in enumerate(parts):
                pay = ev.PaymentProcessed(
                    payment_id=f"{order.order_id}-pay{i}",
                    amount_minor=amount,
                    currency_code="USD",
                    method=ev.PAYMENT_METHOD_CARD,
                )
                order.payments[pay.payment_id] = amount
                out.append(
                    (
                        "payment.processed",
                        self._event(
                            "payment.processed",
                            order,
                            at + timedelta(seconds=30 + i),
                            field="payment",
                            message=pay,
                        ),
                    )
                )
        if order.completed:
            done = ev.OrderCompleted(
                total_minor=order.total_minor, currency_code="USD", items=items
            )
            completed = self._event(
                "order.completed", order, at + timedelta(minutes=4), field="completed", message=done
            )
            out.append(("order.completed", completed))
            if rng.random() < 0.1:
                # A second completion under a new event id: it changes nothing.
                copy = ev.OrderEvent()
                copy.CopyFrom(completed)
                copy.event_id = str(uuid.uuid4())
                out.append(("order.completed", copy))
                self.tally.duplicates += 1
        if order.cancelled:
            cancel = ev.OrderCancelled(reason="customer changed their mind")
            out.append(
                (
                    "order.cancelled",
                    self._event(
                        "order.cancelled",
                        order,
                        at + timedelta(minutes=6),
                        field="cancelled",
                        message=cancel,
                    ),
                )
            )
        for topic, event in list(out):
            if rng.random() < 0.12:
                out.append((topic, event))  # an exact duplicate (same event id)
                self.tally.duplicates += 1
        return out

    async def _send_shuffled(self, order: Order, events: list[tuple[str, ev.OrderEvent]]) -> None:
        self.rng.shuffle(events)
        key = order.customer.split("/")[1].encode()
        for topic, event in events:
            value = json_format.MessageToJson(event, indent=None).encode()
            await self.produce(topic, key, value, [("traceparent", _traceparent(self.rng))])

    async def send_poison(self) -> None:
        """Records the consumer must dead-letter, each marked so the test can find it."""
        someone = next(iter(self.model.members)).split("/")[1]
        good = {
            "eventId": "",
            "eventType": "order.placed",
            "customerId": someone,
            "orderId": "",
            "schemaVersion": 1,
            "occurredAt": "2025-01-06T08:00:00Z",
            "placed": {"currencyCode": "USD", "totalMinor": "100"},
        }
        cases: list[tuple[str, bytes]] = [
            ("order.placed", b"{not json"),
            ("order.completed", b"[]"),
            ("order.placed", _json(good, schemaVersion=99)),
            ("order.placed", _json(good, customerId=str(uuid.uuid4()))),
            ("order.completed", _json(good)),  # a placement on the completion topic
            ("order.placed", _json(good, customerId="not-a-uuid")),
            (
                "payment.processed",
                _json(
                    {
                        **good,
                        "eventType": "payment.processed",
                        "placed": None,
                        "payment": {"paymentId": "p", "amountMinor": "-5"},
                    }
                ),
            ),
        ]
        for i, (topic, value) in enumerate(cases):
            marker = f"{self.run_id}-poison-{i}"
            value = value.replace(b'"eventId": ""', f'"eventId": "{marker}"'.encode())
            value = value.replace(b'"orderId": ""', f'"orderId": "{marker}"'.encode())
            self.tally.poison.add(marker)
            await self.produce(topic, someone.encode(), value, [("e2e-poison", marker.encode())])

    async def run(self, orders: int, seconds: float = 0.0, concurrency: int = 4) -> None:
        """Play `orders` orders over about `seconds` (0: as fast as they go)."""
        members = list(self.model.members.values())
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(orders):
            queue.put_nowait(i)
        began = time.monotonic()

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                wait = began + seconds * i / max(orders, 1) - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self.play_order(self.rng.choice(members))

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def _json(base: dict[str, Any], **changes: Any) -> bytes:
    data = {**base, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not None}).encode()


def _traceparent(rng: random.Random) -> bytes:
    return f"00-{rng.getrandbits(128):032x}-{rng.getrandbits(64):016x}-01".encode()
