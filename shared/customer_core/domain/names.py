"""Resource names (`customers/{uuid}` ...) parsed into ids, with errors naming the field."""

from __future__ import annotations

import functools
import uuid

from customer_core.errors import InvalidArgument


def _parse_id(value: str, field: str, what: str) -> uuid.UUID:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(field, f"{what} id must be a UUID, got {value[:60]!r}") from None
    if str(parsed) != value.lower():
        raise InvalidArgument(field, f"{what} id must be a canonical UUID, got {value[:60]!r}")
    return parsed


# The hot path parses the same few thousand names over and over; parsing one
# costs more than the cached call it names (bench/api.py --profile). Only
# names that parse are remembered (an exception is not cached), so a bad one
# is named on every call, and the bound keeps a stream of fresh ids from
# growing it.
@functools.lru_cache(maxsize=16384)
def parse_name(value: str, field: str, collection: str) -> uuid.UUID:
    """`{collection}/{uuid}` -> uuid; INVALID_ARGUMENT naming `field` otherwise."""
    if not value:
        raise InvalidArgument(field, f"required, as {collection}/{{id}}")
    prefix, sep, rest = value.partition("/")
    if prefix != collection or not sep or "/" in rest:
        raise InvalidArgument(field, f"must be {collection}/{{id}}, got {value[:80]!r}")
    return _parse_id(rest, field, collection.rstrip("s"))


def customer_id(value: str, field: str = "customer") -> uuid.UUID:
    return parse_name(value, field, "customers")


def family_id(value: str, field: str = "family") -> uuid.UUID:
    return parse_name(value, field, "families")


def reward_id(value: str, field: str = "reward") -> uuid.UUID:
    return parse_name(value, field, "rewards")


def redemption_id(value: str, field: str = "redemption") -> uuid.UUID:
    return parse_name(value, field, "redemptions")


def favorite_ids(value: str, field: str = "name") -> tuple[uuid.UUID, uuid.UUID]:
    """`customers/{c}/favorites/{f}` -> (customer id, favorite id)."""
    parts = value.split("/") if value else []
    if len(parts) != 4 or parts[0] != "customers" or parts[2] != "favorites":
        raise InvalidArgument(
            field, f"must be customers/{{id}}/favorites/{{id}}, got {value[:80]!r}"
        )
    return _parse_id(parts[1], field, "customer"), _parse_id(parts[3], field, "favorite")


def customer_name(cid: uuid.UUID) -> str:
    return f"customers/{cid}"


def family_name(fid: uuid.UUID) -> str:
    return f"families/{fid}"


def reward_name(rid: uuid.UUID) -> str:
    return f"rewards/{rid}"


def redemption_name(rid: uuid.UUID) -> str:
    return f"redemptions/{rid}"


def favorite_name(cid: uuid.UUID, fid: uuid.UUID) -> str:
    return f"customers/{cid}/favorites/{fid}"
