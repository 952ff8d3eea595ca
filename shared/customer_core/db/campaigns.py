"""Reward campaign rows: plain SQL, functions taking a connection (budgets: db.campaign_budgets).

A campaign's `spec` (jsonb) is the source of its rules; the columns beside it
(window, paused, budgets, counters) are what queries filter and lock on. A
deleted campaign keeps its row with `ended_at` set, so the ledger's
`campaign_id` always names something.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from customer_core.db import Conn
from customer_core.domain.campaign_spec import campaign_from_spec
from customer_core.domain.campaigns import Campaign, CampaignState
from customer_core.errors import InvalidArgument

log = logging.getLogger(__name__)

COLUMNS = """
    id, namespace, name, generation, spec, display_name, starts_at, ends_at, time_zone,
    paused, budget_total, budget_per_customer, points_awarded, customers_reached, ended_at,
    create_time, update_time
"""

SELECT_ACTIVE = f"""
SELECT {COLUMNS} FROM reward_campaigns
WHERE starts_at <= $1 AND ends_at > $1 AND NOT paused
  AND (ended_at IS NULL OR ended_at > $1)
ORDER BY id
"""

SELECT_LIVE = f"""
SELECT {COLUMNS} FROM reward_campaigns
WHERE namespace = $1 AND name = $2 AND ended_at IS NULL
"""

SELECT_LIVE_FOR_UPDATE = SELECT_LIVE + " FOR UPDATE"

SELECT_LATEST = f"""
SELECT {COLUMNS} FROM reward_campaigns
WHERE namespace = $1 AND name = $2
ORDER BY ended_at DESC NULLS FIRST, create_time DESC
LIMIT 1
"""

SELECT_ALL = f"""
SELECT {COLUMNS} FROM reward_campaigns
WHERE ($1::text IS NULL OR namespace = $1) AND ($2 OR ended_at IS NULL)
ORDER BY namespace, name, create_time
"""

INSERT = f"""
INSERT INTO reward_campaigns (
    id, namespace, name, generation, spec, display_name, starts_at, ends_at, time_zone,
    paused, budget_total, budget_per_customer
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
RETURNING {COLUMNS}
"""

# Only a newer (or the same) generation replaces the rules: a late, stale
# update never rolls a campaign back.
UPDATE = f"""
UPDATE reward_campaigns SET
    generation = $2, spec = $3, display_name = $4, starts_at = $5, ends_at = $6,
    time_zone = $7, paused = $8, budget_total = $9, budget_per_customer = $10,
    update_time = now()
WHERE id = $1 AND ended_at IS NULL AND generation <= $2
RETURNING {COLUMNS}
"""

END = f"""
UPDATE reward_campaigns SET ended_at = $2, update_time = now()
WHERE id = $1 AND ended_at IS NULL
RETURNING {COLUMNS}
"""


@dataclass(frozen=True)
class CampaignRow:
    id: uuid.UUID
    namespace: str
    name: str
    generation: int
    spec: Mapping[str, Any]
    display_name: str
    state: CampaignState
    time_zone: str
    budget_per_customer: int | None
    customers_reached: int
    create_time: datetime
    update_time: datetime

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def budget_left(self) -> int | None:
        total = self.state.budget_total
        return None if total is None else max(total - self.state.points_awarded, 0)


def _row(record: asyncpg.Record) -> CampaignRow:
    spec = record["spec"]
    if isinstance(spec, str):  # a connection without the jsonb codec
        spec = json.loads(spec)
    return CampaignRow(
        id=record["id"],
        namespace=record["namespace"],
        name=record["name"],
        generation=record["generation"],
        spec=spec,
        display_name=record["display_name"],
        state=CampaignState(
            starts_at=record["starts_at"],
            ends_at=record["ends_at"],
            paused=record["paused"],
            budget_total=record["budget_total"],
            points_awarded=record["points_awarded"],
            ended_at=record["ended_at"],
        ),
        time_zone=record["time_zone"],
        budget_per_customer=record["budget_per_customer"],
        customers_reached=record["customers_reached"],
        create_time=record["create_time"],
        update_time=record["update_time"],
    )


def to_campaign(row: CampaignRow) -> Campaign:
    return campaign_from_spec(row.key, row.spec, id=row.id, generation=row.generation)


async def load_active(conn: Conn, at: datetime) -> list[Campaign]:
    """Campaigns whose window contains `at` and that were not deleted by then."""
    campaigns = []
    for record in await conn.fetch(SELECT_ACTIVE, at):
        row = _row(record)
        try:
            campaigns.append(to_campaign(row))
        except InvalidArgument as exc:
            # Checked when written; only a changed tz database could get here.
            log.warning("campaign %s skipped: %s", row.key, exc)
    return campaigns


async def fetch_live(
    conn: Conn, namespace: str, name: str, *, lock: bool = False
) -> CampaignRow | None:
    record = await conn.fetchrow(SELECT_LIVE_FOR_UPDATE if lock else SELECT_LIVE, namespace, name)
    return None if record is None else _row(record)


async def fetch_latest(conn: Conn, namespace: str, name: str) -> CampaignRow | None:
    """The live row, else the most recently ended one (for a deleted campaign's history)."""
    record = await conn.fetchrow(SELECT_LATEST, namespace, name)
    return None if record is None else _row(record)


async def list_campaigns(
    conn: Conn, namespace: str | None = None, *, include_ended: bool = False
) -> list[CampaignRow]:
    return [_row(r) for r in await conn.fetch(SELECT_ALL, namespace, include_ended)]


def _columns(campaign: Campaign) -> tuple[Any, ...]:
    return (
        campaign.display_name,
        campaign.starts_at,
        campaign.ends_at,
        campaign.time_zone,
        campaign.paused,
        campaign.budget_total,
        campaign.budget_per_customer,
    )


async def insert_campaign(
    conn: Conn, namespace: str, name: str, campaign: Campaign, spec: Mapping[str, Any]
) -> CampaignRow:
    record = await conn.fetchrow(
        INSERT, campaign.id, namespace, name, campaign.generation, dict(spec), *_columns(campaign)
    )
    assert record is not None
    return _row(record)


async def update_campaign(
    conn: Conn, row_id: uuid.UUID, campaign: Campaign, spec: Mapping[str, Any]
) -> CampaignRow | None:
    """The updated row, or None when the stored generation is newer."""
    record = await conn.fetchrow(
        UPDATE, row_id, campaign.generation, dict(spec), *_columns(campaign)
    )
    return None if record is None else _row(record)


async def end_campaign(conn: Conn, row_id: uuid.UUID, at: datetime) -> CampaignRow | None:
    record = await conn.fetchrow(END, row_id, at)
    return None if record is None else _row(record)
