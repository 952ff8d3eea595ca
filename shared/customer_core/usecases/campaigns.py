"""Reconcile RewardCampaign resources into `reward_campaigns`, and report their state.

The kopf handlers and the `campaigns` CLI call the same functions, so a
campaign applied from a file behaves exactly as one applied with kubectl. A
resource's generation versions its rules: a stale update never rolls a newer
one back. Deleting ends the campaign at once and keeps its row (history and
the ledger's references stay).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from customer_core.context import Context
from customer_core.db import Conn, outage
from customer_core.db import campaigns as db
from customer_core.domain.campaign_spec import campaign_from_spec, check_name
from customer_core.domain.campaigns import Phase, next_change, phase_of
from customer_core.errors import Contention, Unavailable


@dataclass(frozen=True)
class CampaignStatus:
    """A campaign as the database has it, and the phase that follows now."""

    id: uuid.UUID
    key: str
    display_name: str
    phase: Phase
    generation: int
    points_awarded: int
    customers_reached: int
    budget_left: int | None
    starts_at: datetime
    ends_at: datetime
    time_zone: str
    ended_at: datetime | None
    next_change: datetime | None
    spec: Mapping[str, Any]


@dataclass(frozen=True)
class Applied:
    status: CampaignStatus
    # False when the stored generation was newer or the spec the same.
    changed: bool
    created: bool = False


def status_of(row: db.CampaignRow, now: datetime) -> CampaignStatus:
    return CampaignStatus(
        id=row.id,
        key=row.key,
        display_name=row.display_name,
        phase=phase_of(row.state, now),
        generation=row.generation,
        points_awarded=row.state.points_awarded,
        customers_reached=row.customers_reached,
        budget_left=row.budget_left,
        starts_at=row.state.starts_at,
        ends_at=row.state.ends_at,
        time_zone=row.time_zone,
        ended_at=row.state.ended_at,
        next_change=None if row.state.ended_at else next_change(row.state, now),
        spec=row.spec,
    )


def plain_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec as JSON values (YAML may give datetimes), for storing and comparing."""
    plain: dict[str, Any] = json.loads(
        json.dumps(spec, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
    )
    return plain


@asynccontextmanager
async def _transaction(ctx: Context) -> AsyncIterator[Conn]:
    try:
        async with ctx.pool.acquire() as conn, conn.transaction():
            yield conn
    except Exception as exc:
        if outage.is_contention(exc):
            raise Contention(f"database: {type(exc).__name__}: {exc}") from exc
        if not outage.is_outage(exc):
            raise
        raise Unavailable(f"database: {type(exc).__name__}: {exc}") from exc


async def apply_campaign(
    ctx: Context,
    namespace: str,
    name: str,
    spec: Mapping[str, Any],
    *,
    uid: str | None = None,
    generation: int | None = None,
    now: datetime | None = None,
) -> Applied:
    """Create or update a campaign; InvalidArgument (naming the field) for a bad spec.

    `generation` is the resource's (kopf); without it (the CLI) a changed spec
    gets the next generation. `uid` is the resource's: a live row with another
    uid belongs to a deleted-and-recreated resource, so it is ended first.
    """
    now = now or datetime.now(UTC)
    check_name(namespace)
    check_name(name)
    spec = plain_spec(spec)
    key = f"{namespace}/{name}"
    # Checked before any transaction: a bad spec needs no database.
    campaign_from_spec(key, spec, id=uuid.uuid4(), generation=generation or 1)
    new_id = uuid.UUID(uid) if uid else uuid.uuid4()
    async with _transaction(ctx) as conn:
        live = await db.fetch_live(conn, namespace, name, lock=True)
        if live is not None and uid is not None and live.id != new_id:
            await db.end_campaign(conn, live.id, now)
            live = None
        if live is None:
            campaign = campaign_from_spec(key, spec, id=new_id, generation=generation or 1)
            row = await db.insert_campaign(conn, namespace, name, campaign, spec)
            return Applied(status_of(row, now), changed=True, created=True)
        if generation is None:
            same = plain_spec(live.spec) == spec
            generation = live.generation if same else live.generation + 1
        campaign = campaign_from_spec(key, spec, id=live.id, generation=generation)
        updated = await db.update_campaign(conn, live.id, campaign, spec)
        if updated is None:
            return Applied(status_of(live, now), changed=False)
        return Applied(status_of(updated, now), changed=updated.spec != live.spec)


async def delete_campaign(
    ctx: Context,
    namespace: str,
    name: str,
    *,
    uid: str | None = None,
    now: datetime | None = None,
) -> CampaignStatus | None:
    """End the live campaign now (keeping its row); None when there was none to end."""
    now = now or datetime.now(UTC)
    async with _transaction(ctx) as conn:
        live = await db.fetch_live(conn, namespace, name, lock=True)
        if live is None or (uid is not None and str(live.id) != uid):
            return None
        ended = await db.end_campaign(conn, live.id, now)
    return None if ended is None else status_of(ended, now)


async def campaign_status(
    ctx: Context, namespace: str, name: str, *, now: datetime | None = None
) -> CampaignStatus | None:
    """The live campaign, else the last ended one of that name; None if never applied."""
    async with _transaction(ctx) as conn:
        row = await db.fetch_latest(conn, namespace, name)
    return None if row is None else status_of(row, now or datetime.now(UTC))


async def list_campaigns(
    ctx: Context,
    namespace: str | None = None,
    *,
    include_ended: bool = False,
    now: datetime | None = None,
) -> list[CampaignStatus]:
    async with _transaction(ctx) as conn:
        rows = await db.list_campaigns(conn, namespace, include_ended=include_ended)
    at = now or datetime.now(UTC)
    return [status_of(row, at) for row in rows]
