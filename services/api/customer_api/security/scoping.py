"""Family scoping: an app caller may only name its own family's resources.

A name that does not resolve (an unknown customer) is refused like another
family's, so an app cannot probe which ids or usernames exist elsewhere. A
malformed name is INVALID_ARGUMENT naming the field, as the servicer would say.
"""

from __future__ import annotations

import uuid
from typing import Any

from customer_api.security.families import FamilyResolver
from customer_api.security.scopes import Rule, Target
from customer_api.security.tokens import Principal
from customer_core.domain import names
from customer_core.domain.customers import USERNAME_RE
from customer_core.errors import PermissionDenied


def field_value(request: Any, path: str) -> str:
    value: Any = request
    for part in path.split("."):
        value = getattr(value, part)
    return str(value)


async def _family_of(
    families: FamilyResolver, target: Target, value: str, field: str
) -> uuid.UUID | None:
    if target is Target.FAMILY:
        return names.family_id(value, field)
    if target is Target.CUSTOMER:
        return await families.of_customer(names.customer_id(value, field))
    if target is Target.FAVORITE:
        return await families.of_customer(names.favorite_ids(value, field)[0])
    raise AssertionError(f"no family lookup for {target}")


def _refuse(principal: Principal, what: str) -> PermissionDenied:
    return PermissionDenied(f"{what} is not in the caller's family")


async def check_family(
    families: FamilyResolver, principal: Principal, rule: Rule, request: Any
) -> None:
    """PermissionDenied unless the resource the request names is the caller's family's."""
    if rule.target is None or rule.field is None:
        raise PermissionDenied("this method is not open to app callers")
    if rule.target is Target.SUBSCRIPTION:
        return  # checked per message, inside the stream
    if rule.target is Target.CUSTOMER_KEY:
        key = request.WhichOneof("key")
        if key == "username":
            # A username that breaks the rules names nobody; checking first also
            # keeps bytes PostgreSQL refuses (NUL) away from the look-up.
            if not USERNAME_RE.fullmatch(request.username):
                raise _refuse(principal, "the customer")
            family = await families.of_username(request.username)
            if family != principal.family_id:
                raise _refuse(principal, "the customer")
            return
        field, target = "name", Target.CUSTOMER
    else:
        field, target = rule.field, rule.target
    value = field_value(request, field) if key_set(request, field) else ""
    if not value:
        if rule.optional:
            return
        raise PermissionDenied(f"{field}: an app caller must name a resource of its family")
    family = await _family_of(families, target, value, field)
    if family != principal.family_id:
        raise _refuse(principal, value)


def key_set(request: Any, path: str) -> bool:
    """False when a message on the path is unset (reading it would give defaults)."""
    parts = path.split(".")
    value: Any = request
    for part in parts[:-1]:
        if not value.HasField(part):
            return False
        value = getattr(value, part)
    return True


async def check_subscription(families: FamilyResolver, principal: Principal, request: Any) -> None:
    """An ActivityFeedRequest's Subscribe must target the caller's family or a member."""
    if request.WhichOneof("action") != "subscribe":
        return
    subscribe = request.subscribe
    target = subscribe.WhichOneof("target")
    if target == "customer":
        family = await _family_of(
            families, Target.CUSTOMER, subscribe.customer, "subscribe.customer"
        )
        value = subscribe.customer
    elif target == "family":
        family = await _family_of(families, Target.FAMILY, subscribe.family, "subscribe.family")
        value = subscribe.family
    else:
        raise PermissionDenied("subscribe: an app caller must name a customer or family of its own")
    if family != principal.family_id:
        raise _refuse(principal, value)
