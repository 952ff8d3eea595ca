"""ImportCustomers: protobuf records -> domain records, the summary -> protobuf.

A file repeats a handful of preference sets, restriction lists and roles
across thousands of records, so their domain values are made once and then
looked up by the raw enum numbers (bounded caches; a value never seen before,
or a bad one, goes through the ordinary converter and its errors).
"""

from __future__ import annotations

from typing import TypeVar

from customer_api.convert.customers import dietary_from_pb, preferences_from_pb, role_from_pb
from customer_api.convert.favorites import customization_from_pb
from customer_core.domain.customers import Dietary, Preferences, Profile, Role
from customer_core.domain.favorites import Draft
from customer_core.domain.imports import ImportFavorite, ImportRecord, ImportSummary
from customer_core.pb.customer.v1 import customer_pb2 as pb

K = TypeVar("K")
V = TypeVar("V")

CACHE_LIMIT = 4096  # distinct values remembered per kind; later ones are converted each time

_ROLES: dict[int, Role | None] = {}
_PREFERENCES: dict[tuple[int, ...], Preferences] = {}
_DIETARIES: dict[tuple[tuple[int, ...], tuple[str, ...]], Dietary] = {}


def _remember(cache: dict[K, V], key: K, value: V) -> V:
    if len(cache) < CACHE_LIMIT:
        cache[key] = value
    return value


def _role(value: int) -> Role | None:
    try:
        return _ROLES[value]
    except KeyError:
        return _remember(_ROLES, value, role_from_pb(value, "role"))


def _preferences(m: pb.Preferences) -> Preferences:
    key = (m.milk, m.size, m.temperature, m.sweetness, m.caffeine, m.extra_shots)
    found = _PREFERENCES.get(key)
    if found is None:
        found = _remember(_PREFERENCES, key, preferences_from_pb(m, "preferences"))
    return found


def _dietary(m: pb.Dietary) -> Dietary:
    key = (tuple(m.restrictions), tuple(m.allergies))
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
