"""A RewardCampaign's `status`, built from what the database says.

Every field written here is declared in the CRD's status schema: a structural
schema silently drops undeclared fields (tests/integration/operator checks).
Conditions keep their lastTransitionTime while their status stays the same, so
`kubectl describe` shows when a campaign really changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from customer_core.domain.campaigns import Phase
from customer_core.usecases.campaigns import CampaignStatus

# Reasons are CamelCase words, as Kubernetes conventions ask.
REASON_FOR_PHASE = {
    Phase.SCHEDULED: "WindowNotStarted",
    Phase.ACTIVE: "WindowOpen",
    Phase.PAUSED: "PausedBySpec",
    Phase.EXHAUSTED: "BudgetSpent",
    Phase.ENDED: "WindowClosed",
}
# Reasons shared by the conditions and the Events that explain them.
INVALID_REASON = "InvalidSpec"
UNAVAILABLE_REASON = "DatabaseUnavailable"


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _conditions(
    previous: Any, wanted: Sequence[tuple[str, bool, str, str]], now: datetime
) -> list[dict[str, str]]:
    before = {c.get("type"): c for c in previous or () if isinstance(c, Mapping)}
    result = []
    for kind, ok, reason, message in wanted:
        status = "True" if ok else "False"
        old = before.get(kind)
        since = old.get("lastTransitionTime") if old and old.get("status") == status else None
        result.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": since or rfc3339(now) or "",
            }
        )
    return result


def window_text(campaign: CampaignStatus) -> str:
    start, end = rfc3339(campaign.starts_at), rfc3339(campaign.ends_at)
    return f"{(start or '')[:16]}..{(end or '')[:16]}Z"


def for_campaign(
    campaign: CampaignStatus,
    *,
    observed_generation: int | None,
    previous: Mapping[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """Status of a campaign the database holds (the spec in force is valid)."""
    phase = campaign.phase
    if phase is Phase.ENDED and campaign.ended_at is not None:
        reason, message = "Deleted", f"ended at {rfc3339(campaign.ended_at)} when deleted"
    else:
        reason = REASON_FOR_PHASE.get(phase, phase.value)
        message = _message(campaign)
    status: dict[str, Any] = {
        "phase": phase.value,
        "message": message,
        "observedGeneration": observed_generation,
        "appliedGeneration": campaign.generation,
        "campaignId": str(campaign.id),
        "pointsAwarded": campaign.points_awarded,
        "customersReached": campaign.customers_reached,
        "budgetLeft": campaign.budget_left,
        "startsAt": rfc3339(campaign.starts_at),
        "endsAt": rfc3339(campaign.ends_at),
        "endedAt": rfc3339(campaign.ended_at),
        "nextChangeAt": rfc3339(campaign.next_change),
        "window": window_text(campaign),
        "lastRefreshTime": rfc3339(now),
    }
    old = (previous or {}).get("conditions")
    status["conditions"] = _conditions(
        old,
        [
            ("Valid", True, "SpecAccepted", "the spec passed every check"),
            ("Synced", True, "Stored", f"generation {campaign.generation} is in force"),
            ("Active", phase is Phase.ACTIVE, reason, message),
        ],
        now,
    )
    return status


def _message(campaign: CampaignStatus) -> str:
    if campaign.phase is Phase.SCHEDULED:
        return f"starts at {rfc3339(campaign.starts_at)}"
    if campaign.phase is Phase.EXHAUSTED:
        return f"total budget spent ({campaign.points_awarded} points)"
    if campaign.phase is Phase.ENDED:
        return f"window closed at {rfc3339(campaign.ends_at)}"
    if campaign.phase is Phase.PAUSED:
        return "paused: spec.paused is true"
    return f"awarding points until {rfc3339(campaign.ends_at)}"


def invalid(
    problem: str,
    *,
    observed_generation: int | None,
    in_force: CampaignStatus | None,
    previous: Mapping[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """Status of a spec the checks refused; an earlier valid generation stays in force."""
    message = f"invalid spec: {problem}"
    if in_force is not None and in_force.ended_at is None:
        message += f" (generation {in_force.generation} stays in force)"
    base: dict[str, Any] = (
        {}
        if in_force is None
        else for_campaign(
            in_force, observed_generation=observed_generation, previous=previous, now=now
        )
    )
    old = (previous or {}).get("conditions")
    return {
        **base,
        "phase": Phase.INVALID.value,
        "message": message,
        "observedGeneration": observed_generation,
        "lastRefreshTime": rfc3339(now),
        "conditions": _conditions(
            old,
            [
                ("Valid", False, INVALID_REASON, problem),
                ("Synced", False, INVALID_REASON, message),
                ("Active", False, INVALID_REASON, message),
            ],
            now,
        ),
    }


def already_pending(previous: Mapping[str, Any] | None) -> bool:
    """Whether `previous` already says the database is away (its Event was posted)."""
    return any(
        isinstance(c, Mapping)
        and c.get("type") == "Synced"
        and c.get("reason") == UNAVAILABLE_REASON
        for c in (previous or {}).get("conditions") or ()
    )


def pending(problem: str, *, previous: Mapping[str, Any] | None, now: datetime) -> dict[str, Any]:
    """Status while the database cannot be reached: nothing known changed."""
    old = dict(previous or {})
    phase = old.get("phase") or Phase.PENDING.value
    conditions = [
        (c["type"], c.get("status") == "True", c.get("reason", ""), c.get("message", ""))
        for c in old.get("conditions") or ()
        if isinstance(c, Mapping) and c.get("type") not in (None, "Synced")
    ]
    conditions.append(("Synced", False, UNAVAILABLE_REASON, problem))
    return {
        "phase": phase,
        "message": f"waiting for the database: {problem}",
        "conditions": _conditions(old.get("conditions"), conditions, now),
    }
