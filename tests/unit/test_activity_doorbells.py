"""What a doorbell rings (usecases.activity): the streams with new entries, and whether
a statistics watcher re-reads."""

from __future__ import annotations

import uuid

from customer_core import notices
from customer_core.usecases import activity

CID, FID = uuid.uuid4(), uuid.uuid4()


def _notice(*changed: str, family: uuid.UUID | None = None) -> activity.Notice:
    return activity.Notice(CID, family, frozenset(changed))


def test_activity_rings_the_customer_and_the_family_stream() -> None:
    assert activity.streams_rung(_notice(notices.ACTIVITY)) == (notices.customer_stream(CID),)
    assert activity.streams_rung(_notice(notices.ACTIVITY, family=FID)) == (
        notices.customer_stream(CID),
        notices.family_stream(FID),
    )
    assert activity.streams_rung(_notice(notices.STATS, family=FID)) == ()


def test_statistics_balance_and_tier_changes_reach_watchers() -> None:
    for change in (notices.STATS, notices.POINTS, notices.TIER):
        assert activity.stats_changed(_notice(change, notices.ACTIVITY))
    for change in (notices.ACTIVITY, notices.PROFILE, notices.FAVORITES):
        assert not activity.stats_changed(_notice(change))
