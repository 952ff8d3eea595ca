"""Calling any CustomerService RPC by name with one request, whatever its shape,
and reporting the status code it ended with."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.message import Message

from customer_api.security.scopes import SCOPES, Target
from customer_api.servicers.base import SERVICE
from customer_core.pb.customer.v1 import customer_pb2 as pb
from tests.integration.security.conftest import Family, Stub

METHODS = {m.name: m for m in SERVICE.methods}


def request_class(method: str) -> type[Message]:
    return getattr(pb, METHODS[method].input_type.name)  # type: ignore[no-any-return]


def _set(message: Message, path: str, value: str) -> None:
    *parents, last = path.split(".")
    for part in parents:
        message = getattr(message, part)
    setattr(message, last, value)


def aimed_request(
    method: str, family: Family, member: int = 0, actor: str | None = None
) -> Message:
    """A request naming `family`'s resources wherever the table says a field
    matters (its `member`-th customer), and `actor` as who acts, if given."""
    request = request_class(method)()
    rule = SCOPES[method]
    name = family.member(member)
    if rule.field == rule.actor:
        pass  # the actor names the resource: set below, or from a member's token
    elif rule.target is Target.CUSTOMER and rule.field:
        _set(request, rule.field, name)
    elif rule.target is Target.FAMILY and rule.field:
        _set(request, rule.field, family.name)
    elif rule.target is Target.FAVORITE and rule.field:
        _set(request, rule.field, f"{name}/favorites/{uuid.uuid4()}")
    elif rule.target is Target.CUSTOMER_KEY:
        _set(request, "name", name)
    elif rule.target is Target.SUBSCRIPTION:
        request.subscribe.subscription_id = "s1"
        request.subscribe.customer = name
    if rule.actor is not None and actor is not None:
        _set(request, rule.actor, actor)
    return request


async def _one(items: list[Message]) -> AsyncIterator[Message]:
    for item in items:
        yield item


async def status_of(
    stub: Stub, method: str, request: Message, deadline: float = 30
) -> grpc.StatusCode:
    """The code the call ended with; a stream that delivers a first message counts as OK."""
    desc = METHODS[method]
    call: Any
    try:
        if desc.client_streaming and desc.server_streaming:
            call = getattr(stub, method)(_one([request]), timeout=deadline)
            return await _first(call)
        if desc.client_streaming:
            await getattr(stub, method)(_one([request]), timeout=deadline)
            return grpc.StatusCode.OK
        if desc.server_streaming:
            call = getattr(stub, method)(request, timeout=deadline)
            return await _first(call)
        await getattr(stub, method)(request, timeout=deadline)
        return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as exc:
        return exc.code()


async def _first(call: Any) -> grpc.StatusCode:
    try:
        async with asyncio.timeout(3):
            got = await call.read()
    except TimeoutError:
        # Open, quiet and not refused: a live stream waiting for events.
        call.cancel()
        return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    if got is grpc.aio.EOF:
        code: grpc.StatusCode = await call.code()
        return code
    call.cancel()
    return grpc.StatusCode.OK
