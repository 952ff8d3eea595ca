"""Random sequences of earn / redeem / capture / reverse / adjust / expire through
the real database, checking the ledger's invariants after every step."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from customer_core.config import Settings
from customer_core.context import Context
from customer_core.db import accounts as accounts_db
from customer_core.db import loyalty as db
from customer_core.db import redemptions as redemptions_db
from customer_core.domain.jobs import JobPolicy
from customer_core.domain.loyalty import LedgerEntry
from customer_core.errors import InsufficientPoints
from customer_core.usecases import loyalty, rewards
from customer_core.usecases.jobs.holds import release_holds

T = TypeVar("T")
# Rewards with no tier restriction: 25, 100 and 200 points.
REWARDS = [uuid.UUID(f"5eed0000-0000-4000-8000-00000000000{i}") for i in (1, 2, 3)]
COST = dict(zip(REWARDS, (25, 100, 200), strict=True))


def test_ledger_invariants_hold_for_random_sequences(settings: Settings) -> None:
    loop = asyncio.new_event_loop()

    def run(coro: Coroutine[Any, Any, T]) -> T:
        return loop.run_until_complete(coro)

    ctx = run(Context.create(settings))

    class Ledger(RuleBasedStateMachine):
        redemptions = Bundle("redemptions")

        def __init__(self) -> None:
            super().__init__()
            self.customer = run(self._new_customer())
            self.balance = 0
            self.lifetime = 0
            self.held: dict[uuid.UUID, int] = {}  # redemption -> points, while held
            # redemption -> (order, points), while held or captured
            self.live: dict[uuid.UUID, tuple[str, int]] = {}

        async def _new_customer(self) -> uuid.UUID:
            cid, fid = uuid.uuid4(), uuid.uuid4()
            async with ctx.pool.acquire() as conn:
                await conn.execute("INSERT INTO families (id, display_name) VALUES ($1, 'F')", fid)
                await conn.execute(
                    "INSERT INTO customers (id, family_id, username, display_name)"
                    " VALUES ($1, $2, $3, 'C')",
                    cid,
                    fid,
                    f"u{cid.hex[:16]}",
                )
            return cid

        async def _post(self, kind: str, points: int) -> None:
            async with ctx.pool.acquire() as conn, conn.transaction():
                account = await accounts_db.account_for_customer(conn, self.customer)
                assert account is not None
                await db.post_entries(
                    conn,
                    [
                        LedgerEntry(
                            account.id,
                            self.customer,
                            kind,
                            points,
                            kind,
                            "order" if kind == "earn" else "system",
                            None,
                            None,
                            f"{kind}:{uuid.uuid4()}",
                        )
                    ],
                )

        @rule(points=st.integers(1, 300))
        def earn(self, points: int) -> None:
            run(self._post("earn", points))
            self.balance += points
            self.lifetime += points

        @rule(target=redemptions, reward=st.sampled_from(REWARDS))
        def redeem(self, reward: uuid.UUID) -> uuid.UUID:
            order, key = f"o-{uuid.uuid4()}", str(uuid.uuid4())
            try:
                done = run(rewards.redeem_reward(ctx, self.customer, reward, order, key))
            except InsufficientPoints:
                assert self.balance < COST[reward]
                return uuid.UUID(int=0)
            assert self.balance >= COST[reward]
            rid = done.redemption.id
            self.balance -= COST[reward]
            self.held[rid] = COST[reward]
            self.live[rid] = (order, COST[reward])
            # A retry with the same key changes nothing and answers the same.
            again = run(rewards.redeem_reward(ctx, self.customer, reward, order, key))
            assert again.replayed and again.redemption.id == rid
            return rid

        @rule(rid=redemptions)
        def capture(self, rid: uuid.UUID) -> None:
            if rid not in self.live:
                return
            order = self.live[rid][0]

            async def go() -> None:
                async with ctx.pool.acquire() as conn, conn.transaction():
                    await redemptions_db.capture_holds_for_order(conn, [order])

            run(go())
            self.held.pop(rid, None)

        @rule(rid=redemptions)
        def reverse(self, rid: uuid.UUID) -> None:
            if rid.int == 0:
                return
            run(rewards.reverse_redemption(ctx, rid, "changed mind", ""))
            if rid in self.live:
                self.balance += self.live.pop(rid)[1]
                self.held.pop(rid, None)

        @rule(points=st.integers(-400, 400).filter(bool))
        def adjust(self, points: int) -> None:
            try:
                run(loyalty.adjust_points(ctx, self.customer, points, "fix", str(uuid.uuid4())))
            except InsufficientPoints:
                assert self.balance + points < 0
                return
            assert self.balance + points >= 0
            self.balance += points
            self.lifetime += max(points, 0)

        @rule()
        def expire_inactive_points(self) -> None:
            if self.balance > 0:
                run(self._post("expire", -self.balance))
                self.balance = 0

        @rule()
        def hold_timeout_passes(self) -> None:
            later = datetime.now(UTC) + timedelta(days=1)
            run(release_holds(ctx, JobPolicy(), later))
            for rid, points in self.held.items():
                self.balance += points
                del self.live[rid]
            self.held.clear()

        @invariant()
        def ledger_matches(self) -> None:
            async def read() -> tuple[int, int, int, int]:
                async with ctx.pool.acquire() as conn:
                    account = await accounts_db.account_for_customer(conn, self.customer)
                    assert account is not None
                    total = await conn.fetchval(
                        "SELECT coalesce(sum(points), 0) FROM loyalty_points WHERE account_id = $1",
                        account.id,
                    )
                    held = await db.held_points(conn, account.id)
                return account.balance, total, held, account.lifetime_points

            balance, total, held, lifetime = run(read())
            assert balance == total == self.balance
            assert balance >= 0
            assert held == sum(self.held.values())
            assert lifetime == self.lifetime

    Ledger.TestCase.settings = hypothesis_settings(
        max_examples=12,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    try:
        Ledger.TestCase().runTest()
    finally:
        run(ctx.aclose())
        loop.close()
