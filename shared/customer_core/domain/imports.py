"""Batch import of customers: record validation, batching and the summary. Pure.

A record is the whole truth about one person as the source system knows it,
keyed by `external_id`: importing it again changes nothing; importing a
changed record updates the profile. Favorites are merged (missing ones are
added, none removed or reordered: the customer may have changed them in the
app since), and the opening points balance is posted once, ever.
"""

from __future__ import annotations

import functools
import re
import uuid
from dataclasses import dataclass, field

from customer_core.domain.customers import Profile, Role, check_family_name, check_profile
from customer_core.domain.favorites import MAX_FAVORITES, Draft, check_draft, customization_key
from customer_core.errors import InvalidArgument

BATCH_SIZE = 1000
MAX_REJECTIONS = 1000  # listed in the summary; all are counted
MAX_EXTERNAL_ID = 100  # leaves room for the ledger key "import:{id}:opening"
MAX_OPENING_POINTS = 10_000_000


# A file repeats a few ways of making drinks: each canonical text is made once.
_customization_key = functools.lru_cache(maxsize=4096)(customization_key)

# ... and a few favorites: each distinct draft is checked once. Only drafts that
# passed are remembered, so a bad one is checked (and named) every time.
_CHECKED_DRAFTS: dict[Draft, Draft] = {}
DRAFT_CACHE_LIMIT = 4096


def _checked_draft(d: Draft, field: str) -> Draft:
    found = _CHECKED_DRAFTS.get(d)
    if found is None:
        found = check_draft(d, field)
        if len(_CHECKED_DRAFTS) < DRAFT_CACHE_LIMIT:
            _CHECKED_DRAFTS[d] = found
    return found


@dataclass(frozen=True)
class ImportFavorite:
    draft: Draft
    is_usual: bool = False

    @functools.cached_property
    def key(self) -> tuple[str, str]:
        # Cached: checked, planned and written, it is asked for several times.
        return self.draft.drink_id, _customization_key(self.draft.customization)


@dataclass(frozen=True)
class ImportRecord:
    position: int  # 0-based, in the stream
    external_id: str
    family_external_id: str
    family_display_name: str
    profile: Profile
    favorites: tuple[ImportFavorite, ...] = ()
    opening_points: int = 0

    @functools.cached_property
    def username_key(self) -> str:
        return self.profile.username.lower()

    @property
    def opening_key(self) -> str:
        """The ledger idempotency key that makes the opening balance post once."""
        return f"import:{self.external_id}:opening"


@dataclass(frozen=True)
class Rejection:
    position: int
    external_id: str
    field: str
    reason: str


def rejection(position: int, external_id: str, exc: InvalidArgument) -> Rejection:
    # Fields are named within the record ("username", "favorites[2].drink_id").
    name = exc.field.removeprefix("record.")
    return Rejection(position, external_id[:MAX_EXTERNAL_ID], name, exc.problem)


EXTERNAL_ID_RE = re.compile(rf"[!-~]{{1,{MAX_EXTERNAL_ID}}}")


def check_external_id(value: str, field: str) -> str:
    if not EXTERNAL_ID_RE.fullmatch(value):
        raise InvalidArgument(
            field, f"required, 1..{MAX_EXTERNAL_ID} printable ASCII characters without spaces"
        )
    return value


def check_record(r: ImportRecord) -> ImportRecord:
    """The record with normalised values, or InvalidArgument naming the first bad field."""
    check_external_id(r.external_id, "external_id")
    check_external_id(r.family_external_id, "family_external_id")
    if r.family_display_name:
        check_family_name(r.family_display_name, "family_display_name")
    profile = check_profile(r.profile, "record")
    if profile.role is None:
        profile = Profile(**{**profile.__dict__, "role": Role.ADULT})
    check_opening_points(r.opening_points)
    favorites = check_favorites(r.favorites)
    family_name = r.family_display_name.strip()
    if profile is r.profile and favorites is r.favorites and family_name == r.family_display_name:
        return r  # already normal: no copy
    return ImportRecord(
        position=r.position,
        external_id=r.external_id,
        family_external_id=r.family_external_id,
        family_display_name=family_name,
        profile=profile,
        favorites=favorites,
        opening_points=r.opening_points,
    )


def check_opening_points(value: int) -> int:
    if not 0 <= value <= MAX_OPENING_POINTS:
        raise InvalidArgument("opening_points", f"must be 0..{MAX_OPENING_POINTS}, got {value}")
    return value


def check_favorites(favorites: tuple[ImportFavorite, ...]) -> tuple[ImportFavorite, ...]:
    if not favorites:
        return favorites
    if len(favorites) > MAX_FAVORITES:
        raise InvalidArgument("favorites", f"at most {MAX_FAVORITES}, got {len(favorites)}")
    seen: dict[tuple[str, str], ImportFavorite] = {}
    for i, f in enumerate(favorites):
        checked = ImportFavorite(_checked_draft(f.draft, f"favorites[{i}]"), f.is_usual)
        prev = seen.get(checked.key)
        # The same drink made the same way twice is one favorite.
        seen[checked.key] = (
            checked
            if prev is None
            else ImportFavorite(prev.draft, prev.is_usual or checked.is_usual)
        )
    out = tuple(seen.values())
    if sum(f.is_usual for f in out) > 1:
        raise InvalidArgument("favorites", "at most one favorite may be the usual")
    return out


class Batch:
    """Records written together; at most one per external id and per username.

    A record that shares either with one already in the batch starts the next
    batch instead, after this one is written: a repeated external id then
    updates what the earlier record created, and a username taken earlier in
    the stream is rejected like one taken before the import.
    """

    def __init__(self) -> None:
        self.records: list[ImportRecord] = []
        self._ids: set[str] = set()
        self._usernames: set[str] = set()

    def __len__(self) -> int:
        return len(self.records)

    def fits(self, r: ImportRecord) -> bool:
        return r.external_id not in self._ids and r.username_key not in self._usernames

    def overlaps(self, other: Batch) -> bool:
        return not (
            self._ids.isdisjoint(other._ids) and self._usernames.isdisjoint(other._usernames)
        )

    def add(self, r: ImportRecord) -> None:
        self.records.append(r)
        self._ids.add(r.external_id)
        self._usernames.add(r.username_key)


@dataclass
class ImportSummary:
    """Counts for the whole stream, and the first MAX_REJECTIONS rejections (mutable)."""

    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    def reject(self, r: Rejection) -> None:
        self.rejected += 1
        if len(self.rejections) < MAX_REJECTIONS:
            self.rejections.append(r)

    def add(self, outcome: BatchOutcome) -> None:
        self.created += outcome.created
        self.updated += outcome.updated
        self.unchanged += outcome.unchanged
        for r in outcome.rejections:
            self.reject(r)


@dataclass
class BatchOutcome:
    """What writing one batch did (mutable while the batch is written)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejections: list[Rejection] = field(default_factory=list)


# ---- What to write ------------------------------------------------------------------


@dataclass(frozen=True)
class Existing:
    """What the database holds for an external id already imported."""

    customer_id: uuid.UUID
    family_id: uuid.UUID
    profile: Profile
    favorite_keys: frozenset[tuple[str, str]] = frozenset()
    next_position: int = 0
    has_usual: bool = False
    opening_posted: bool = False


@dataclass(frozen=True)
class Plan:
    """The writes one valid record needs; `outcome` is created, updated or unchanged."""

    record: ImportRecord
    customer_id: uuid.UUID
    family_id: uuid.UUID
    outcome: str
    write_profile: bool
    favorites: tuple[tuple[ImportFavorite, int, bool], ...]  # (favorite, position, is_usual)
    opening_points: int


def plan(
    r: ImportRecord, family_id: uuid.UUID, existing: Existing | None, new_id: uuid.UUID
) -> Plan:
    """Decide what importing `r` changes; InvalidArgument when it cannot be applied."""
    if existing is None:
        added = tuple((f, i, f.is_usual) for i, f in enumerate(r.favorites))
        return Plan(r, new_id, family_id, "created", True, added, r.opening_points)
    if existing.family_id != family_id:
        raise InvalidArgument(
            "family_external_id", "the customer was imported into another family; it cannot move"
        )
    keys = existing.favorite_keys
    position = existing.next_position
    usual_taken = existing.has_usual
    favorites = []
    for f in r.favorites:
        if f.key in keys:
            continue
        favorites.append((f, position, f.is_usual and not usual_taken))
        position += 1
    if len(keys) + len(favorites) > MAX_FAVORITES:
        raise InvalidArgument(
            "favorites", f"the customer would have more than {MAX_FAVORITES} favorites"
        )
    opening = 0 if existing.opening_posted else r.opening_points
    write_profile = existing.profile != r.profile
    changed = write_profile or favorites or opening
    return Plan(
        r,
        existing.customer_id,
        family_id,
        "updated" if changed else "unchanged",
        write_profile,
        tuple(favorites),
        opening,
    )
