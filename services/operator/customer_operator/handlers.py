"""Kopf handlers for RewardCampaign: translate, call a use case, write status.

Errors map to kopf in one place (`_kopf_error`): a spec the checks refuse is
permanent (phase Invalid, no retry until the spec changes); a database that
cannot be reached is temporary (retried after OPERATOR_RETRY_SECONDS).
Handlers return None so kopf stores nothing of its own in `status`.

Each outcome is also posted as a Kubernetes Event (`_explain`), which is what
`kubectl describe` shows: kopf 1.45 no longer turns log lines into Events
(`settings.posting.loggers` is off by default), so only explicit posts appear.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from customer_core.context import Context
from customer_core.errors import Contention, CustomerServiceError, InvalidArgument, Unavailable
from customer_core.usecases import campaigns as usecases
from customer_operator import metrics
from customer_operator import status as statuses

GROUP = "rewards.coffee.example"
VERSION = "v1alpha1"
PLURAL = "rewardcampaigns"
FINALIZER = f"{GROUP}/end-campaign"

log = logging.getLogger(__name__)


def _kopf_error(exc: CustomerServiceError, retry_seconds: float) -> Exception:
    if isinstance(exc, Unavailable | Contention):
        return kopf.TemporaryError(str(exc), delay=retry_seconds)
    return kopf.PermanentError(str(exc))


def _explain(body: kopf.Body, *, warning: bool, reason: str, message: str) -> None:
    """Post an Event on the resource (kopf posts it in the background, retrying)."""
    post = kopf.warn if warning else kopf.info
    post(body, reason=reason, message=message)


def _unavailable(
    body: kopf.Body, status: Mapping[str, Any], problem: str, now: datetime
) -> dict[str, Any]:
    """Pending status; the Event only on the way in, not on every retry while it lasts."""
    if not statuses.already_pending(status):
        _explain(
            body,
            warning=True,
            reason=statuses.UNAVAILABLE_REASON,
            message=f"waiting for the database: {problem}",
        )
    return statuses.pending(problem, previous=status, now=now)


def _generation(meta: Mapping[str, Any]) -> int | None:
    value = meta.get("generation")
    return int(value) if value is not None else None


def _now() -> datetime:
    return datetime.now(UTC)


async def reconcile(
    *,
    spec: Mapping[str, Any],
    meta: Mapping[str, Any],
    status: Mapping[str, Any],
    name: str,
    namespace: str | None,
    uid: str | None,
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Create, update and resume: write the spec as the campaign's rules."""
    ctx: Context = memo["ctx"]
    namespace = namespace or "default"
    generation = _generation(meta)
    now = _now()
    try:
        applied = await usecases.apply_campaign(
            ctx, namespace, name, spec, uid=uid, generation=generation, now=now
        )
    except InvalidArgument as exc:
        metrics.RECONCILES.labels("invalid").inc()
        in_force = await _quiet_status(ctx, namespace, name, now)
        invalid = statuses.invalid(
            str(exc), observed_generation=generation, in_force=in_force, previous=status, now=now
        )
        patch.status.update(invalid)
        _explain(body, warning=True, reason=statuses.INVALID_REASON, message=invalid["message"])
        raise _kopf_error(exc, memo["retry_seconds"]) from exc
    except Unavailable as exc:
        metrics.RECONCILES.labels("unavailable").inc()
        patch.status.update(_unavailable(body, status, str(exc), now))
        raise _kopf_error(exc, memo["retry_seconds"]) from exc
    metrics.RECONCILES.labels("applied").inc()
    done = statuses.for_campaign(
        applied.status, observed_generation=generation, previous=status, now=now
    )
    patch.status.update(done)
    summary = f"generation {applied.status.generation} in force: {done['message']}"
    _explain(body, warning=False, reason="Applied", message=summary)


async def _quiet_status(
    ctx: Context, namespace: str, name: str, now: datetime
) -> usecases.CampaignStatus | None:
    """The generation still in force, if the database can say (an extra, not a must)."""
    try:
        found = await usecases.campaign_status(ctx, namespace, name, now=now)
    except Unavailable:
        return None
    return found if found is not None and found.ended_at is None else None


async def end(
    *,
    body: kopf.Body,
    name: str,
    namespace: str | None,
    uid: str | None,
    memo: kopf.Memo,
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = log,
    **_: Any,
) -> None:
    """Deletion: end the campaign at once; the finalizer holds the resource until it is."""
    try:
        ended = await usecases.delete_campaign(memo["ctx"], namespace or "default", name, uid=uid)
    except Unavailable as exc:
        raise _kopf_error(exc, memo["retry_seconds"]) from exc
    metrics.forget(namespace or "default", name)
    if ended is not None:
        metrics.ENDED.inc()
        message = f"campaign ended with {ended.points_awarded} points awarded"
        logger.info("%s: %s", ended.key, message)
        _explain(body, warning=False, reason="Ended", message=message)


async def refresh(
    *,
    body: kopf.Body,
    meta: Mapping[str, Any],
    status: Mapping[str, Any],
    name: str,
    namespace: str | None,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Timer: points awarded, customers reached, budget and phase as of now."""
    now = _now()
    try:
        found = await usecases.campaign_status(memo["ctx"], namespace or "default", name, now=now)
    except Unavailable as exc:
        patch.status.update(_unavailable(body, status, str(exc), now))
        return
    if found is not None and found.ended_at is None:
        metrics.record_progress(
            namespace or "default",
            name,
            found.points_awarded,
            found.customers_reached,
            found.budget_left,
        )
    generation = _generation(meta)
    if status.get("phase") == "Invalid" and status.get("observedGeneration") == generation:
        # The spec in the resource is still the refused one: keep saying so.
        if found is not None and found.ended_at is None:
            patch.status.update(
                {
                    "pointsAwarded": found.points_awarded,
                    "customersReached": found.customers_reached,
                    "budgetLeft": found.budget_left,
                    "lastRefreshTime": statuses.rfc3339(now),
                }
            )
        return
    if found is None or found.ended_at is not None:
        return  # not applied yet: the create handler (or its retry) will write status
    patch.status.update(
        statuses.for_campaign(
            found,
            observed_generation=status.get("observedGeneration", generation),
            previous=status,
            now=now,
        )
    )


def register(registry: kopf.OperatorRegistry, refresh_seconds: float) -> None:
    """Attach the handlers to `registry` (the timer's interval comes from settings)."""
    resource = (GROUP, VERSION, PLURAL)
    kopf.on.create(*resource, registry=registry, id="reconcile")(reconcile)
    kopf.on.update(*resource, registry=registry, id="reconcile", field="spec")(reconcile)
    kopf.on.resume(*resource, registry=registry, id="reconcile")(reconcile)
    kopf.on.delete(*resource, registry=registry, id="end")(end)
    kopf.timer(
        *resource,
        registry=registry,
        id="refresh",
        interval=refresh_seconds,
        initial_delay=min(refresh_seconds, 5.0),
    )(refresh)
