"""Live change notices and the activity log, on Valkey.

After a transaction commits, its writer (consumer, api, jobs) calls `publish`
with what changed. Each activity is appended to a bounded Valkey stream per
customer and per family (the replay window; the stream entry id is the
cursor), and one compact notice per customer goes out on pub/sub, where every
api replica fans it out to its open streams.

Publishing is best effort: the database is the truth, a lost notice delays a
live update, it never loses data.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis.asyncio as redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

NOTICE_CHANNEL = "cs:notices"
REPLAY_WINDOW = 1000  # entries kept per customer and per family

# What a notice says changed.
STATS = "stats"
POINTS = "points"
TIER = "tier"
PROFILE = "profile"
FAVORITES = "favorites"


@dataclass(frozen=True)
class Activity:
    """One thing that happened, for the activity feed (kinds as in ActivityKind, lower-case)."""

    kind: str  # order_placed, order_completed, points_earned, reward_redeemed, ...
    customer_id: uuid.UUID
    family_id: uuid.UUID | None = None
    order_id: str = ""
    points: int = 0
    reward_id: uuid.UUID | None = None
    tier: str = ""
    campaign: str = ""
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_fields(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "customer_id": str(self.customer_id),
            "family_id": str(self.family_id) if self.family_id else "",
            "order_id": self.order_id,
            "points": str(self.points),
            "reward_id": str(self.reward_id) if self.reward_id else "",
            "tier": self.tier,
            "campaign": self.campaign,
            "occurred_at": self.occurred_at.isoformat(),
        }


@dataclass(frozen=True)
class Notice:
    customer_id: uuid.UUID
    family_id: uuid.UUID | None
    changed: frozenset[str]

    def encode(self) -> str:
        return json.dumps(
            {
                "c": str(self.customer_id),
                "f": str(self.family_id) if self.family_id else None,
                "ch": sorted(self.changed),
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, raw: str | bytes) -> Notice:
        data = json.loads(raw)
        return cls(
            customer_id=uuid.UUID(data["c"]),
            family_id=uuid.UUID(data["f"]) if data.get("f") else None,
            changed=frozenset(data.get("ch", ())),
        )


def customer_stream(customer_id: uuid.UUID) -> str:
    return f"cs:activity:customer:{customer_id}"


def family_stream(family_id: uuid.UUID) -> str:
    return f"cs:activity:family:{family_id}"


def merge(notices: Iterable[Notice]) -> list[Notice]:
    """One notice per customer, the union of what changed."""
    merged: dict[uuid.UUID, Notice] = {}
    for n in notices:
        prev = merged.get(n.customer_id)
        if prev is None:
            merged[n.customer_id] = n
        else:
            merged[n.customer_id] = Notice(
                n.customer_id, n.family_id or prev.family_id, prev.changed | n.changed
            )
    return list(merged.values())


async def publish(
    client: redis.Redis, notices: Sequence[Notice], activities: Sequence[Activity] = ()
) -> None:
    """Append activities to their replay streams, then publish merged notices."""
    if not notices and not activities:
        return
    try:
        async with client.pipeline(transaction=False) as pipe:
            for a in activities:
                fields = a.to_fields()
                pipe.xadd(customer_stream(a.customer_id), fields,  # type: ignore[arg-type]
                          maxlen=REPLAY_WINDOW, approximate=True)  # fmt: skip
                if a.family_id:
                    pipe.xadd(family_stream(a.family_id), fields,  # type: ignore[arg-type]
                              maxlen=REPLAY_WINDOW, approximate=True)  # fmt: skip
            for n in merge(notices):
                pipe.publish(NOTICE_CHANNEL, n.encode())
            await pipe.execute()
    except RedisError as exc:
        log.warning("publishing change notices failed", extra={"error": str(exc)})
