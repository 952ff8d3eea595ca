"""Family scoping: an app caller may only name its own family's resources, a
child only its own, and a member acts only as itself.

A name that does not resolve (an unknown customer) is refused like another
family's, so an app cannot probe which ids or usernames exist elsewhere. A
malformed name is INVALID_ARGUMENT naming the field, as the servicer would say.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from customer_api.convert.customers import role_from_pb
from customer_api.security.families import FamilyResolver
from customer_api.security.scopes import (
    FAMILY_ACCOUNT,
    OWN_REACH,
    OWNER,
    Rule,
    Target,
)
from customer_api.security.tokens import Principal
from customer_core.domain import names
from customer_core.domain.customers import USERNAME_RE
from customer_core.errors import PermissionDenied, Unauthenticated
from customer_core.pb.customer.v1 import customer_pb2 as pb


@dataclass(frozen=True)
class Caller:
    """An app caller as the table sees it: its role, and (a member) its own id."""

    principal: Principal
    role: str
    customer_id: uuid.UUID | None


async def app_caller(
    families: FamilyResolver, principal: Principal, service_accounts: bool
) -> Caller:
    """Who an app token speaks for, now: a live member of its family, by role."""
    if principal.customer_id is None:
        if not service_accounts:
            raise Unauthenticated("family-level app tokens are off")
        return Caller(principal, FAMILY_ACCOUNT, None)
    member = await families.member(principal.customer_id)
    if member is None or not member.live or member.family_id != principal.family_id:
        raise Unauthenticated("the token's customer is not a live member of its family")
    return Caller(principal, member.role.value, member.customer_id)


def field_value(request: Any, path: str) -> str:
    value: Any = request
    for part in path.split("."):
        value = getattr(value, part)
    return str(value)


async def _owner_of(
    families: FamilyResolver, target: Target, value: str, field: str
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """(the customer named, if one is; its family, or the family named)."""
    if target is Target.FAMILY:
        return None, names.family_id(value, field)
    if target is Target.CUSTOMER:
        customer = names.customer_id(value, field)
    elif target is Target.FAVORITE:
        customer = names.favorite_ids(value, field)[0]
    else:
        raise AssertionError(f"no family lookup for {target}")
    return customer, await families.of_customer(customer)


def _refuse(what: str) -> PermissionDenied:
    return PermissionDenied(f"{what} is not in the caller's family")


def _within(caller: Caller, reach: str, customer: uuid.UUID | None, family: Any, what: str) -> None:
    if family != caller.principal.family_id:
        raise _refuse(what)
    if reach == OWN_REACH and (customer is None or customer != caller.customer_id):
        raise PermissionDenied(f"a {caller.role} may only name itself, not {what}")


async def check_family(
    families: FamilyResolver, caller: Caller, method: str, rule: Rule, request: Any
) -> None:
    """PermissionDenied unless the caller's role may call `method` on what the
    request names; fills a member's own id into the field saying who acts."""
    reach = rule.reach(caller.role)
    if reach is None or rule.target is None or rule.field is None:
        raise PermissionDenied(f"a {caller.role} app caller may not call {method}")
    if rule.actor is not None and caller.customer_id is not None:
        _fill_actor(caller.customer_id, rule.actor, request)
    if rule.target is Target.SUBSCRIPTION:
        return  # checked per message, inside the stream
    if rule.target is Target.CUSTOMER_KEY and request.WhichOneof("key") == "username":
        await _pin_username(families, caller, reach, request)
        return
    field, target = (
        ("name", Target.CUSTOMER)
        if rule.target is Target.CUSTOMER_KEY
        else (rule.field, rule.target)
    )
    value = field_value(request, field) if key_set(request, field) else ""
    if not value:
        if rule.optional:
            return
        raise PermissionDenied(f"{field}: an app caller must name a resource of its family")
    customer, family = await _owner_of(families, target, value, field)
    _within(caller, reach, customer, family, value)
    if rule.sets_role and caller.role != OWNER:
        await _check_role_change(families, method, request, customer)
    if rule.actor is not None and caller.customer_id is None:
        await _check_named_actor(families, caller, rule, rule.actor, request)


async def _pin_username(families: FamilyResolver, caller: Caller, reach: str, request: Any) -> None:
    """Resolve the username once, check it, and make the call read that very id."""
    # A username that breaks the rules names nobody; checking first also keeps
    # bytes PostgreSQL refuses (NUL) away from the look-up.
    found = (
        await families.by_username(request.username)
        if USERNAME_RE.fullmatch(request.username)
        else None
    )
    if found is None:
        raise _refuse("the customer")
    customer, family = found
    _within(caller, reach, customer, family, "the customer")
    request.name = names.customer_name(customer)  # clears `username` (a oneof)


def _fill_actor(me: uuid.UUID, field: str, request: Any) -> None:
    """A member acts as itself: the field saying who acts comes from its token."""
    named = getattr(request, field)
    if named and names.customer_id(named, field) != me:
        raise PermissionDenied(f"{field}: a member can act only as itself")
    setattr(request, field, names.customer_name(me))


async def _check_named_actor(
    families: FamilyResolver, caller: Caller, rule: Rule, field: str, request: Any
) -> None:
    """The family's account names the member it acts for: one of its family,
    whose own role the rule allows."""
    member = await families.member(names.customer_id(getattr(request, field), field))
    if member is None or not member.live or member.family_id != caller.principal.family_id:
        raise _refuse(field)
    if rule.reach(member.role.value) is None:
        raise PermissionDenied(f"{field}: a {member.role.value} may not do this")


async def _check_role_change(
    families: FamilyResolver, method: str, request: Any, customer: uuid.UUID | None
) -> None:
    wanted = request.customer.role
    refused = PermissionDenied("customer.role: only the family's owner can change roles")
    if method == "CreateCustomer":
        if wanted == pb.FAMILY_ROLE_OWNER:
            raise refused
        return
    paths = list(request.update_mask.paths)
    if (paths and "role" not in paths) or wanted == pb.FAMILY_ROLE_UNSPECIFIED:
        return
    # A number outside the enum (proto3 enums are open) is INVALID_ARGUMENT, as
    # the servicer would answer it.
    role = role_from_pb(wanted, "customer.role")
    current = await families.member(customer) if customer is not None else None
    if current is None or current.role is not role:
        raise refused


def key_set(request: Any, path: str) -> bool:
    """False when a message on the path is unset (reading it would give defaults)."""
    parts = path.split(".")
    value: Any = request
    for part in parts[:-1]:
        if not value.HasField(part):
            return False
        value = getattr(value, part)
    return True


async def check_subscription(
    families: FamilyResolver, caller: Caller, rule: Rule, request: Any
) -> None:
    """An ActivityFeedRequest's Subscribe must target the caller's family or a
    member (a child: only itself)."""
    if request.WhichOneof("action") != "subscribe":
        return
    subscribe = request.subscribe
    target = subscribe.WhichOneof("target")
    reach = rule.reach(caller.role)
    if reach is None:
        raise PermissionDenied(f"a {caller.role} app caller may not subscribe")
    if target == "customer":
        customer, family = await _owner_of(
            families, Target.CUSTOMER, subscribe.customer, "subscribe.customer"
        )
        _within(caller, reach, customer, family, subscribe.customer)
    elif target == "family":
        _, family = await _owner_of(families, Target.FAMILY, subscribe.family, "subscribe.family")
        _within(caller, reach, None, family, subscribe.family)
    else:
        raise PermissionDenied("subscribe: an app caller must name a customer or family of its own")
