"""Reward notifications: recorded once per customer and reason, published to Kafka."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter

from aiokafka import AIOKafkaConsumer
from google.protobuf import json_format

from customer_core.context import Context
from customer_core.pb.customer.v1 import events_pb2
from customer_scheduler.settings import JobSettings
from customer_scheduler.tasks import Jobs
from tests.integration.jobs.conftest import NOW, add_account, add_customer, add_family, days

KIND = events_pb2.NotificationKind


async def consume(
    bootstrap: str, topic: str, expected: int
) -> list[events_pb2.CustomerNotification]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    got: list[events_pb2.CustomerNotification] = []
    try:
        async with asyncio.timeout(60):
            while len(got) < expected:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for record in records:
                        got.append(
                            json_format.Parse(record.value, events_pb2.CustomerNotification())
                        )
        # Anything beyond what we expect would be a duplicate.
        extra = await consumer.getmany(timeout_ms=1500)
        got += [
            json_format.Parse(r.value, events_pb2.CustomerNotification())
            for rs in extra.values()
            for r in rs
        ]
    finally:
        await consumer.stop()
    return got


async def test_each_eligibility_is_notified_once_and_published(
    ctx: Context, job_settings: JobSettings
) -> None:
    topic = f"customer.notifications.{uuid.uuid4().hex[:8]}"
    jobs = Jobs(ctx, dataclasses.replace(job_settings, notifications_topic=topic))
    async with ctx.pool.acquire() as conn:
        a = await add_customer(conn)
        await add_account(conn, a, 150, NOW)  # rewards costing 25 and 100
        gold = await add_customer(conn)
        await add_account(conn, gold, 450, NOW, tier="gold")  # 25, 100, 200, 400 (gold) + tier
        fading = await add_customer(conn)
        await add_account(conn, fading, 30, NOW - days(170))  # 25 + expires in 10 days
        family = await add_family(conn, pooled=True)
        members = [await add_customer(conn, family), await add_customer(conn, family)]
        await conn.execute(
            "INSERT INTO loyalty_accounts (id, family_id, balance) VALUES ($1, $2, 0)",
            uuid.uuid4(),
            family,
        )
        await conn.execute(
            "INSERT INTO loyalty_points (account_id, kind, points, reason, source,"
            " idempotency_key) SELECT id, 'adjust', 100, 'seed', 'operator', 'seed-family'"
            " FROM loyalty_accounts WHERE family_id = $1",
            family,
        )
        await conn.execute("UPDATE loyalty_accounts SET balance = 100 WHERE family_id = $1", family)
        deleted = await add_customer(conn)
        await add_account(conn, deleted, 900, NOW)
        await conn.execute("UPDATE customers SET deleted_at = now() WHERE id = $1", deleted)

    try:
        first = await jobs.run("notifications", now=NOW)
        second = await jobs.run("notifications", now=NOW)
    finally:
        await jobs.aclose()

    assert first.rows == 13, first.result
    assert second.rows == 0 and second.outcome == "succeeded"
    got = await consume(ctx.settings.kafka.bootstrap, topic, 13)
    assert len(got) == 13
    assert len({n.notification_id for n in got}) == 13
    per_customer = Counter(n.customer_id for n in got)
    assert per_customer == {
        str(a): 2,
        str(gold): 5,
        str(fading): 2,
        str(members[0]): 2,
        str(members[1]): 2,
    }
    (tier,) = [n for n in got if n.kind == KIND.NOTIFICATION_KIND_TIER_REACHED]
    assert (tier.customer_id, tier.subject) == (str(gold), "gold")
    (expiring,) = [n for n in got if n.kind == KIND.NOTIFICATION_KIND_POINTS_EXPIRING]
    assert expiring.customer_id == str(fading) and expiring.points == 30
    assert expiring.expire_time.ToDatetime().date() == (NOW + days(10)).date()
    assert {n.subject for n in got if n.customer_id == str(a)} == {
        "5eed0000-0000-4000-8000-000000000001",
        "5eed0000-0000-4000-8000-000000000002",
    }
    async with ctx.pool.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM customer_notifications WHERE published_at IS NULL"
            )
            == 0
        )
