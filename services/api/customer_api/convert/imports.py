"""ImportCustomers: protobuf records -> checked domain records, the summary -> protobuf.

A file repeats a handful of preference sets, restriction lists and roles
across thousands of records, so their domain values are made once and then
looked up by the raw enum numbers (bounded caches; a value never seen before,
or a bad one, goes through the ordinary converter and its errors).

checked_record_from_pb is record_from_pb then check_record in one pass: the
parts that repeat are looked up already checked (remembered from records the
domain checked), the others go through the domain's own checks. Anything
unusual (a value not seen yet, a check that fails) takes the domain's path
instead, so a refused record is named exactly as check_record names it. The
checked parts are keyed by the messages' bytes: equal bytes are equal messages.
"""

from __future__ import annotations

from typing import TypeVar

from customer_api.convert.customers import dietary_from_pb, preferences_from_pb, role_from_pb
from customer_api.convert.favorites import customization_from_pb
from customer_core.domain.customers import (
    DISPLAY_NAME_MAX,
    Dietary,
    Preferences,
    Profile,
    Role,
    check_email,
    check_family_name,
    check_text,
    check_username,
)
from customer_core.domain.favorites import Draft
from customer_core.domain.imports import (
    ImportFavorite,
    ImportRecord,
    ImportSummary,
    check_external_id,
    check_opening_points,
    check_record,
)
from customer_core.errors import InvalidArgument
from customer_core.pb.customer.v1 import customer_pb2 as pb

K = TypeVar("K")
V = TypeVar("V")

CACHE_LIMIT = 4096  # distinct values remembered per kind; later ones are converted each time

_ROLES: dict[int, Role | None] = {}
_PREFERENCES: dict[tuple[int, ...], Preferences] = {}
_DIETARIES: dict[tuple[tuple[int, ...], tuple[str, ...]], Dietary] = {}

# The same as check_record leaves them (a role defaults to adult, allergies and
# favorites are deduplicated), by the enum number or the message's bytes:
# filled only from records the domain checked and accepted.
_CHECKED_ROLES: dict[int, Role] = {}
_CHECKED_PREFERENCES: dict[bytes, Preferences] = {}
_CHECKED_DIETARIES: dict[bytes, Dietary] = {}
_CHECKED_FAVORITES: dict[tuple[bytes, ...], tuple[ImportFavorite, ...]] = {}


def _remember(cache: dict[K, V], key: K, value: V) -> V:
    if len(cache) < CACHE_LIMIT:
        cache[key] = value
    return value


def _role(value: int) -> Role | None:
    try:
        return _ROLES[value]
    except KeyError:
        return _remember(_ROLES, value, role_from_pb(value, "role"))


def _preferences_key(m: pb.Preferences) -> tuple[int, ...]:
    return (m.milk, m.size, m.temperature, m.sweetness, m.caffeine, m.extra_shots)


def _dietary_key(m: pb.Dietary) -> tuple[tuple[int, ...], tuple[str, ...]]:
    return (tuple(m.restrictions), tuple(m.allergies))


def _preferences(m: pb.Preferences) -> Preferences:
    key = _preferences_key(m)
    found = _PREFERENCES.get(key)
    if found is None:
        found = _remember(_PREFERENCES, key, preferences_from_pb(m, "preferences"))
    return found


def _dietary(m: pb.Dietary) -> Dietary:
    key = _dietary_key(m)
    found = _DIETARIES.get(key)
    if found is None:
        found = _remember(_DIETARIES, key, dietary_from_pb(m, "dietary"))
    return found


def _favorites(m: pb.ImportRecord) -> tuple[ImportFavorite, ...]:
    return tuple(
        ImportFavorite(
            Draft(
                f.drink_id,
                f.drink_name,
                customization_from_pb(f.customization, f"favorites[{i}].customization"),
            ),
            f.is_usual,
        )
        for i, f in enumerate(m.favorites)
    )


def record_from_pb(m: pb.ImportRecord, position: int) -> ImportRecord:
    """The record as domain values (not yet validated); InvalidArgument for an unknown enum.

    Enums are read in field order (role, preferences, dietary, favorites): the
    first unknown one is the one named.
    """
    profile = Profile(
        m.username,
        m.display_name,
        m.email,
        _role(m.role),
        _preferences(m.preferences),
        _dietary(m.dietary),
    )
    return ImportRecord(
        position,
        m.external_id,
        m.family_external_id,
        m.family_display_name,
        profile,
        _favorites(m) if m.favorites else (),
        m.opening_points,
    )


def checked_record_from_pb(m: pb.ImportRecord, position: int) -> ImportRecord:
    """check_record(record_from_pb(m, position)), with the same result or the same error."""
    role_key = m.role
    preferences_key = m.preferences.SerializeToString()
    dietary_key = m.dietary.SerializeToString()
    favorites_key = tuple([f.SerializeToString() for f in m.favorites]) if m.favorites else ()
    try:
        role = _CHECKED_ROLES[role_key]
        preferences = _CHECKED_PREFERENCES[preferences_key]
        dietary = _CHECKED_DIETARIES[dietary_key]
        favorites = _CHECKED_FAVORITES[favorites_key] if favorites_key else ()
        # The checks check_record makes of the values that differ from record to record.
        external_id = check_external_id(m.external_id, "external_id")
        family_external_id = check_external_id(m.family_external_id, "family_external_id")
        family_name = m.family_display_name
        if family_name:
            family_name = check_family_name(family_name, "family_display_name").strip()
        username = check_username(m.username, "username")
        display_name = check_text(m.display_name, "display_name", 1, DISPLAY_NAME_MAX)
        email = m.email
        check_email(email, "email")
        opening_points = check_opening_points(m.opening_points)
    except (KeyError, InvalidArgument):
        r = check_record(record_from_pb(m, position))
        # Accepted: these parts are good (and so checked) in whatever record has them.
        _remember(_CHECKED_ROLES, role_key, r.profile.role or Role.ADULT)
        _remember(_CHECKED_PREFERENCES, preferences_key, r.profile.preferences)
        _remember(_CHECKED_DIETARIES, dietary_key, r.profile.dietary)
        if favorites_key:
            _remember(_CHECKED_FAVORITES, favorites_key, r.favorites)
        return r
    profile = Profile(username, display_name, email, role, preferences, dietary)
    return ImportRecord(
        position, external_id, family_external_id, family_name, profile, favorites, opening_points
    )


def summary_to_pb(s: ImportSummary) -> pb.ImportCustomersResponse:
    return pb.ImportCustomersResponse(
        received=s.received,
        created=s.created,
        updated=s.updated,
        unchanged=s.unchanged,
        rejected=s.rejected,
        rejections=[
            pb.ImportRejection(
                position=r.position, external_id=r.external_id, field=r.field, reason=r.reason
            )
            for r in s.rejections
        ],
    )
