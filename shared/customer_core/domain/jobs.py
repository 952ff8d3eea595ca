"""Background jobs: names, cron schedules and the policies jobs apply (pure rules).

Cron expressions are the classic five fields (minute hour day-of-month month
day-of-week, Sunday = 0 or 7) with `*`, lists, ranges and steps; as in cron,
when both day fields are restricted a day matches if either matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

ROLLUPS = "rollups"
NOTIFICATIONS = "notifications"
EXPIRY = "expiry"
CLEANUP = "cleanup"
HOLDS = "holds"
RECONCILE = "reconcile"

JOB_NAMES = (ROLLUPS, NOTIFICATIONS, EXPIRY, CLEANUP, HOLDS, RECONCILE)

# Sane defaults: frequent cheap jobs, nightly heavy ones off the morning rush.
DEFAULT_SCHEDULES = {
    ROLLUPS: "*/5 * * * *",
    NOTIFICATIONS: "*/10 * * * *",
    EXPIRY: "30 2 * * *",
    CLEANUP: "0 3 * * *",
    HOLDS: "* * * * *",
    RECONCILE: "15 * * * *",
}

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))


class CronError(ValueError):
    """A cron expression is malformed; the message says which field and why."""


@dataclass(frozen=True)
class Cron:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday .. 6 = Saturday
    any_day: bool
    any_weekday: bool

    def matches(self, at: datetime) -> bool:
        if at.minute not in self.minutes or at.hour not in self.hours:
            return False
        return at.month in self.months and self._day_matches(at.date())

    def _day_matches(self, day: date) -> bool:
        by_day = day.day in self.days
        by_weekday = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return by_day and by_weekday
        return by_day or by_weekday

    def next_after(self, at: datetime) -> datetime:
        """The first matching minute strictly after `at` (UTC), within about 4 years."""
        at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
        day = at.date()
        for _ in range(4 * 366 + 1):
            if day.month in self.months and self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                        if candidate > at:
                            return candidate
            day += timedelta(days=1)
        raise CronError(f"{self.expression!r} never fires")


def parse_cron(expression: str) -> Cron:
    """Parse five cron fields; raises CronError naming the bad field."""
    parts = expression.split()
    if len(parts) != 5:
        raise CronError(f"expected 5 fields (minute hour day month weekday), got {len(parts)}")
    sets = [
        _parse_field(part, name, low, high)
        for part, (name, low, high) in zip(parts, _FIELDS, strict=True)
    ]
    weekdays = frozenset(d % 7 for d in sets[4])
    cron = Cron(
        expression=" ".join(parts),
        minutes=sets[0],
        hours=sets[1],
        days=sets[2],
        months=sets[3],
        weekdays=weekdays,
        any_day=parts[2] == "*",
        any_weekday=parts[4] == "*",
    )
    cron.next_after(datetime(2000, 1, 1, tzinfo=UTC))  # refuses e.g. "0 0 31 2 *"
    return cron


def _parse_field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        values.update(_parse_item(item, name, low, high))
    return frozenset(values)


def _parse_item(item: str, name: str, low: int, high: int) -> range:
    body, _, step_text = item.partition("/")
    step = 1
    if step_text:
        step = _number(step_text, name, 1, high - low + 1)
    if body == "*":
        start, end = low, high
    elif "-" in body:
        first, _, last = body.partition("-")
        start, end = _number(first, name, low, high), _number(last, name, low, high)
        if start > end:
            raise CronError(f"{name}: range {body!r} runs backwards")
    else:
        start = _number(body, name, low, high)
        end = high if step_text else start
    return range(start, end + 1, step)


def _number(text: str, name: str, low: int, high: int) -> int:
    if not text.isdigit():
        raise CronError(f"{name}: {text!r} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{name}: {value} is outside {low}-{high}")
    return value


def tick_of(at: datetime) -> str:
    """The scheduled minute a run belongs to: one run per job per tick."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


@dataclass(frozen=True)
class JobPolicy:
    """What the jobs do, from configuration (defaults are the documented ones)."""

    expiry_days: int = 180
    expiry_warning_days: int = 14
    history_retention_days: int = 730
    inbox_retention_days: int = 30
    purge_grace_days: int = 30
    rollup_overlap_seconds: int = 300
    batch_size: int = 10_000
    report_limit: int = 100

    def expiry_cutoff(self, now: datetime) -> datetime:
        """Accounts whose last activity is before this expire."""
        return now - timedelta(days=self.expiry_days)

    def warning_cutoff(self, now: datetime) -> datetime:
        """Accounts whose last activity is before this are warned (and not yet expired)."""
        return now - timedelta(days=max(self.expiry_days - self.expiry_warning_days, 0))

    def history_cutoff(self, now: datetime) -> datetime:
        return now - timedelta(days=self.history_retention_days)

    def inbox_cutoff(self, now: datetime) -> datetime:
        return now - timedelta(days=self.inbox_retention_days)

    def purge_cutoff(self, now: datetime) -> datetime:
        return now - timedelta(days=self.purge_grace_days)

    def rollup_from(self, watermark: datetime | None) -> datetime:
        """Where the next roll-up window starts: a little before the last mark, so a
        transaction that committed late with an older timestamp is still seen."""
        if watermark is None:
            return datetime(1970, 1, 1, tzinfo=UTC)
        return watermark - timedelta(seconds=self.rollup_overlap_seconds)


@dataclass(frozen=True)
class Finding:
    """A reconciliation check that failed: how many rows, and the first ids."""

    check: str
    count: int
    ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobOutcome:
    """What one run did: rows touched, a short human summary, any findings."""

    rows: int
    detail: str = ""
    findings: tuple[Finding, ...] = ()
