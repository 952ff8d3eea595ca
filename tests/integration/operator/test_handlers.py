"""The kopf handlers, called as kopf calls them, with real bodies and real PostgreSQL.

No cluster here: each test hands a handler the body the API server would send
and checks the status patch it produces and the rows it leaves behind. The
clock is the only thing replaced (to walk a campaign through its window).
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import kopf
import pytest
from kopf._core.engines.posting import K8sEvent
from prometheus_client import REGISTRY

from customer_core.config import Settings
from customer_core.context import Context
from customer_core.db import campaign_budgets as campaign_budgets_db
from customer_core.db import campaigns as db
from customer_core.domain.campaigns import Award
from customer_core.usecases import campaigns as usecases
from customer_launcher.devstack import free_port
from customer_operator import handlers

from .conftest import resource


def memo(ctx: Context) -> kopf.Memo:
    return kopf.Memo(ctx=ctx, retry_seconds=7.0)


async def call(handler: Any, body: dict[str, Any], ctx: Context) -> kopf.Patch:
    """Run a handler with the kwargs kopf passes; returns the patch it built."""
    patch = kopf.Patch()
    meta = body["metadata"]
    await handler(
        body=kopf.Body(body),
        spec=body["spec"],
        meta=meta,
        status=body.get("status", {}),
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta["uid"],
        patch=patch,
        memo=memo(ctx),
        retry=0,
        logger=handlers.log,
    )
    return patch


def with_status(body: dict[str, Any], patch: kopf.Patch) -> dict[str, Any]:
    """The body after kopf applied the patch (a merge patch of status)."""
    out = copy.deepcopy(body)
    merged = {**out.get("status", {}), **patch.get("status", {})}
    out["status"] = {k: v for k, v in merged.items() if v is not None}
    return out


def bump(body: dict[str, Any], **spec_changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    out["spec"].update(spec_changes)
    out["metadata"]["generation"] += 1
    return out


def said(posted: list[K8sEvent], body: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(type, reason, message) of each Event posted on `body`'s object."""
    uid = body["metadata"]["uid"]
    return [(e.type, e.reason, e.message) for e in posted if e.ref.get("uid") == uid]


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


async def live(ctx: Context, name: str = "double-mornings") -> db.CampaignRow:
    async with ctx.pool.acquire() as conn:
        row = await db.fetch_live(conn, "coffee", name)
    assert row is not None
    return row


async def test_create_writes_the_campaign_and_reports_active(
    ctx: Context, posted: list[K8sEvent]
) -> None:
    body = resource()
    patch = await call(handlers.reconcile, body, ctx)
    status = patch["status"]
    assert said(posted, body) == [
        ("Normal", "Applied", f"generation 1 in force: {status['message']}")
    ]
    assert posted[0].ref["kind"] == "RewardCampaign" and posted[0].ref["namespace"] == "coffee"
    assert status["phase"] == "Active"
    assert status["observedGeneration"] == 1 and status["appliedGeneration"] == 1
    assert status["campaignId"] == body["metadata"]["uid"]
    assert (status["pointsAwarded"], status["customersReached"]) == (0, 0)
    assert "budgetLeft" not in status or status["budgetLeft"] is None
    assert conditions(status) == {
        "Valid": ("True", "SpecAccepted"),
        "Synced": ("True", "Stored"),
        "Active": ("True", "WindowOpen"),
    }
    row = await live(ctx)
    assert str(row.id) == body["metadata"]["uid"] and row.generation == 1
    async with ctx.pool.acquire() as conn:
        active = await db.load_active(conn, datetime.now(UTC))
    assert [c.key for c in active] == ["coffee/double-mornings"]


async def test_updates_are_versioned_by_generation(ctx: Context) -> None:
    body = resource()
    await call(handlers.reconcile, body, ctx)
    newer = bump(body, effect={"multiplier": 3})
    patch = await call(handlers.reconcile, newer, ctx)
    assert patch["status"]["appliedGeneration"] == 2
    assert (await live(ctx)).spec["effect"] == {"multiplier": 3}
    # A late copy of generation 1 (a resume after a restart, say) changes nothing.
    stale = await call(handlers.reconcile, body, ctx)
    row = await live(ctx)
    assert row.generation == 2 and row.spec["effect"] == {"multiplier": 3}
    assert stale["status"]["appliedGeneration"] == 2


async def test_pause_and_resume(ctx: Context) -> None:
    body = resource()
    await call(handlers.reconcile, body, ctx)
    paused = bump(body, paused=True)
    patch = await call(handlers.reconcile, paused, ctx)
    assert patch["status"]["phase"] == "Paused"
    assert conditions(patch["status"])["Active"] == ("False", "PausedBySpec")
    async with ctx.pool.acquire() as conn:
        assert await db.load_active(conn, datetime.now(UTC)) == []
    resumed = bump(with_status(paused, patch), paused=False)
    patch = await call(handlers.reconcile, resumed, ctx)
    assert patch["status"]["phase"] == "Active"


async def test_the_timer_walks_scheduled_active_ended(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = copy.deepcopy(resource()["spec"])
    spec["window"] = {
        "start": "2030-01-01T08:00",
        "end": "2030-02-01T08:00",
        "timeZone": "Europe/Paris",
    }
    body = resource("winter", spec)
    patch = await call(handlers.reconcile, body, ctx)
    assert patch["status"]["phase"] == "Scheduled"
    assert patch["status"]["nextChangeAt"] == "2030-01-01T07:00:00Z"  # 08:00 in Paris, CET
    body = with_status(body, patch)
    first_transition = conditions(patch["status"])

    for now, phase in (
        (datetime(2030, 1, 1, 7, 0, tzinfo=UTC), "Active"),
        (datetime(2030, 2, 1, 7, 0, tzinfo=UTC), "Ended"),
    ):
        monkeypatch.setattr(handlers, "_now", lambda now=now: now)
        patch = await call(handlers.refresh, body, ctx)
        assert patch["status"]["phase"] == phase
        body = with_status(body, patch)
    assert first_transition["Valid"] == ("True", "SpecAccepted")
    assert conditions(body["status"])["Active"] == ("False", "WindowClosed")


async def test_budget_spent_shows_exhausted_on_the_next_refresh(ctx: Context) -> None:
    spec = copy.deepcopy(resource()["spec"])
    spec["budget"] = {"totalPoints": 100, "perCustomerPoints": 60}
    body = resource("capped", spec)
    patch = await call(handlers.reconcile, body, ctx)
    assert patch["status"]["budgetLeft"] == 100
    body = with_status(body, patch)
    campaign_id = uuid.UUID(body["metadata"]["uid"])
    async with ctx.pool.acquire() as conn, conn.transaction():
        awards = [Award(campaign_id, "coffee/capped", uuid.uuid4(), f"o-{n}", 60) for n in range(3)]
        granted = await campaign_budgets_db.reserve_budget(conn, awards)
    assert sum(a.points for a in granted) == 100
    patch = await call(handlers.refresh, body, ctx)
    status = patch["status"]
    assert status["phase"] == "Exhausted"
    assert (status["pointsAwarded"], status["customersReached"], status["budgetLeft"]) == (
        100,
        2,
        0,
    )
    assert conditions(status)["Active"] == ("False", "BudgetSpent")


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_metrics_count_reconciles_and_follow_each_campaign(ctx: Context) -> None:
    applied = sample("customer_campaign_reconciles_total", outcome="applied") or 0.0
    invalid = sample("customer_campaign_reconciles_total", outcome="invalid") or 0.0
    ended = sample("customer_campaign_ends_total") or 0.0
    spec = copy.deepcopy(resource()["spec"])
    spec["budget"] = {"totalPoints": 100, "perCustomerPoints": 60}
    body = resource("metered", spec)
    body = with_status(body, await call(handlers.reconcile, body, ctx))
    assert sample("customer_campaign_reconciles_total", outcome="applied") == applied + 1
    campaign_id = uuid.UUID(body["metadata"]["uid"])
    async with ctx.pool.acquire() as conn, conn.transaction():
        awards = [Award(campaign_id, "coffee/metered", uuid.uuid4(), f"o{n}", 30) for n in (1, 2)]
        await campaign_budgets_db.reserve_budget(conn, awards)
    await call(handlers.refresh, body, ctx)
    series = {"campaign": "coffee/metered"}
    assert sample("customer_campaign_points_awarded", **series) == 60
    assert sample("customer_campaign_customers_reached", **series) == 2
    assert sample("customer_campaign_budget_left", **series) == 40

    broken = bump(body, effect={"multiplier": 1})
    with pytest.raises(kopf.PermanentError):
        await call(handlers.reconcile, broken, ctx)
    assert sample("customer_campaign_reconciles_total", outcome="invalid") == invalid + 1

    await call(handlers.end, body, ctx)
    assert sample("customer_campaign_ends_total") == ended + 1
    assert sample("customer_campaign_points_awarded", **series) is None
    assert sample("customer_campaign_budget_left", **series) is None


async def test_an_invalid_spec_is_reported_not_retried(
    ctx: Context, posted: list[K8sEvent]
) -> None:
    spec = copy.deepcopy(resource()["spec"])
    # Offsets get past the schema's text comparison; the operator's check catches it.
    spec["window"] = {"start": "2030-01-01T10:00:00+02:00", "end": "2030-01-01T08:00:00Z"}
    body = resource("backwards", spec)
    patch = kopf.Patch()
    with pytest.raises(kopf.PermanentError, match=r"spec\.window\.end"):
        await handlers.reconcile(
            body=kopf.Body(body),
            spec=body["spec"],
            meta=body["metadata"],
            status={},
            name="backwards",
            namespace="coffee",
            uid=body["metadata"]["uid"],
            patch=patch,
            memo=memo(ctx),
        )
    status = patch["status"]
    assert status["phase"] == "Invalid"
    assert "spec.window.end" in status["message"]
    assert conditions(status)["Valid"] == ("False", "InvalidSpec")
    # `kubectl describe` explains it too: a Warning naming the field.
    assert said(posted, body) == [("Warning", "InvalidSpec", status["message"])]
    async with ctx.pool.acquire() as conn:
        assert await db.fetch_live(conn, "coffee", "backwards") is None


async def test_an_invalid_update_keeps_the_last_valid_rules_until_fixed(
    ctx: Context, posted: list[K8sEvent]
) -> None:
    body = resource()
    body = with_status(body, await call(handlers.reconcile, body, ctx))
    broken = bump(body, effect={"multiplier": 1})
    patch = kopf.Patch()
    with pytest.raises(kopf.PermanentError):
        await handlers.reconcile(
            body=kopf.Body(broken),
            spec=broken["spec"],
            meta=broken["metadata"],
            status=broken["status"],
            name="double-mornings",
            namespace="coffee",
            uid=broken["metadata"]["uid"],
            patch=patch,
            memo=memo(ctx),
        )
    assert patch["status"]["phase"] == "Invalid"
    assert "generation 1 stays in force" in patch["status"]["message"]
    assert patch["status"]["observedGeneration"] == 2
    assert patch["status"]["appliedGeneration"] == 1
    assert (await live(ctx)).generation == 1
    assert said(posted, broken)[-1] == ("Warning", "InvalidSpec", patch["status"]["message"])
    broken = with_status(broken, patch)
    # The timer does not paper over the refusal while the spec is still the bad one.
    refreshed = await call(handlers.refresh, broken, ctx)
    assert refreshed["status"].get("phase") is None
    fixed = bump(broken, effect={"multiplier": 1.5})
    patch = await call(handlers.reconcile, fixed, ctx)
    assert patch["status"]["phase"] == "Active" and patch["status"]["appliedGeneration"] == 3
    assert conditions(patch["status"])["Valid"] == ("True", "SpecAccepted")


async def test_delete_ends_at_once_and_keeps_history(ctx: Context, posted: list[K8sEvent]) -> None:
    body = resource()
    await call(handlers.reconcile, body, ctx)
    before = datetime.now(UTC)
    await call(handlers.end, body, ctx)
    assert said(posted, body)[-1] == ("Normal", "Ended", "campaign ended with 0 points awarded")
    async with ctx.pool.acquire() as conn:
        assert await db.fetch_live(conn, "coffee", "double-mornings") is None
        assert await db.load_active(conn, datetime.now(UTC) + timedelta(seconds=1)) == []
        # An order placed before the deletion still earns (it is judged at its time).
        assert len(await db.load_active(conn, before - timedelta(seconds=1))) == 1
    ended = await usecases.campaign_status(ctx, "coffee", "double-mornings")
    assert ended is not None and ended.phase.value == "Ended" and ended.ended_at is not None
    # A second delete (a retry) is harmless; a new resource of the same name is a new campaign.
    await call(handlers.end, body, ctx)
    again = resource()
    patch = await call(handlers.reconcile, again, ctx)
    assert patch["status"]["phase"] == "Active"
    assert patch["status"]["campaignId"] == again["metadata"]["uid"] != body["metadata"]["uid"]
    every = await usecases.list_campaigns(ctx, "coffee", include_ended=True)
    assert len(every) == 2


async def test_a_recreated_resource_replaces_a_live_row_it_missed_the_deletion_of(
    ctx: Context,
) -> None:
    await call(handlers.reconcile, resource(), ctx)
    newcomer = resource()  # same name, new uid: the old one went while we were down
    await call(handlers.reconcile, newcomer, ctx)
    assert str((await live(ctx)).id) == newcomer["metadata"]["uid"]
    assert len(await usecases.list_campaigns(ctx, "coffee", include_ended=True)) == 2


async def test_database_down_is_a_temporary_error(
    ctx: Context, settings: Settings, posted: list[K8sEvent]
) -> None:
    # A pool pointed at a port nothing listens on: every acquire fails to connect.
    pool = await asyncpg.create_pool(host="127.0.0.1", port=free_port(), min_size=0)
    down = Context(settings=settings, pool=pool, valkey=ctx.valkey, cache=ctx.cache)
    body = resource()
    body["status"] = {"phase": "Active"}
    try:
        for handler in (handlers.reconcile, handlers.end):
            patch = kopf.Patch()
            with pytest.raises(kopf.TemporaryError) as caught:
                await handler(
                    body=kopf.Body(body),
                    spec=body["spec"],
                    meta=body["metadata"],
                    status=body["status"],
                    name="double-mornings",
                    namespace="coffee",
                    uid=body["metadata"]["uid"],
                    patch=patch,
                    memo=memo(down),
                )
            assert caught.value.delay == 7.0
        patch = await call(handlers.refresh, body, down)
        # Once the status says so, retries and refreshes post no Event each time.
        before = len(posted)
        pending = with_status(body, patch)
        await call(handlers.refresh, pending, down)
        with pytest.raises(kopf.TemporaryError):
            await call(handlers.reconcile, pending, down)
        assert len(posted) == before
    finally:
        await pool.close()
    # The last known phase stays; the Synced condition says why nothing changed.
    assert patch["status"]["phase"] == "Active"
    assert conditions(patch["status"])["Synced"] == ("False", "DatabaseUnavailable")
    # The reconcile and the first refresh each said so (end posts only on success).
    events = said(posted, body)
    assert [e[:2] for e in events] == [("Warning", "DatabaseUnavailable")] * 2
    assert events[-1][2] == patch["status"]["message"]


async def test_a_new_resource_while_the_database_is_down_is_pending(
    ctx: Context, settings: Settings
) -> None:
    pool = await asyncpg.create_pool(host="127.0.0.1", port=free_port(), min_size=0)
    down = Context(settings=settings, pool=pool, valkey=ctx.valkey, cache=ctx.cache)
    patch = kopf.Patch()
    body = resource()
    try:
        with pytest.raises(kopf.TemporaryError):
            await handlers.reconcile(
                body=kopf.Body(body),
                spec=body["spec"],
                meta=body["metadata"],
                status={},
                name="double-mornings",
                namespace="coffee",
                uid=body["metadata"]["uid"],
                patch=patch,
                memo=memo(down),
            )
    finally:
        await pool.close()
    assert patch["status"]["phase"] == "Pending"
    # Once the database is back the retry writes it.
    patch = await call(handlers.reconcile, body, ctx)
    assert patch["status"]["phase"] == "Active"
