"""Fuzz every RPC of a running server with random and malformed messages.

Whatever arrives, the server answers with a deliberate status: never INTERNAL
or UNKNOWN, never a hang (every call has a deadline; a unary call running into
it fails the test), and it keeps serving afterwards. Callers are an operator
(past every scope check) and an app (through the family checks).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer_core.pb.customer.v1 import customer_pb2 as pb
from tests.integration.security.calls import METHODS
from tests.integration.security.conftest import Family, Running, Serve, Signer

BAD = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}
DEADLINE = 20.0
FD = FieldDescriptor


@dataclass
class Target:
    loop: asyncio.AbstractEventLoop
    running: Running
    families: tuple[Family, Family]
    metadata: dict[str, tuple[tuple[str, str], ...]]
    channel: grpc.aio.Channel


@pytest.fixture
async def target(serve: Serve, signer: Signer, families: tuple[Family, Family]) -> Target:
    own = families[0]
    running = await serve()
    channel = grpc.aio.insecure_channel(running.target)
    running.channels.append(channel)  # closed with the server
    return Target(
        loop=asyncio.get_running_loop(),
        running=running,
        channel=channel,
        families=families,
        metadata={
            "operator": (("authorization", f"Bearer {signer.token('operator', 'fuzz')}"),),
            "app": (("authorization", f"Bearer {signer.token('app', 'fuzz', own.id)}"),),
        },
    )


def _names(families: tuple[Family, Family]) -> st.SearchStrategy[str]:
    """Resource names that reach past parsing: real members and families, and near misses."""
    real = [f.member(i) for f in families for i in range(2)] + [f.name for f in families]
    real += [f"{families[0].member(0)}/favorites/{uuid.uuid4()}", f"rewards/{uuid.uuid4()}"]
    fresh = st.uuids().map(str)
    return st.one_of(
        st.sampled_from(real),
        fresh.map(lambda u: f"customers/{u}"),
        fresh.map(lambda u: f"customers/{u.upper()}"),
        st.sampled_from(["customers/", "customers//favorites/", "families/x/y", "/", "\x00"]),
    )


def _scalar(field: FieldDescriptor, names: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    t = field.type
    if t == FD.TYPE_STRING:
        return st.one_of(names, st.text(max_size=40), st.text(min_size=200, max_size=400))
    if t == FD.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == FD.TYPE_BOOL:
        return st.booleans()
    if t == FD.TYPE_ENUM:
        return st.integers(-3, 20)  # unknown values included: proto3 enums are open
    if t in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return st.floats(allow_nan=True, width=32 if t == FD.TYPE_FLOAT else 64)
    if t in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
        return st.one_of(st.integers(-5, 600), st.integers(-(2**31), 2**31 - 1))
    if t in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if t in (FD.TYPE_UINT64, FD.TYPE_FIXED64):
        return st.integers(0, 2**64 - 1)
    return st.one_of(st.integers(-5, 10_000), st.integers(-(2**63), 2**63 - 1))


@st.composite
def messages(
    draw: st.DrawFn, desc: Descriptor, names: st.SearchStrategy[str], depth: int = 0
) -> Message:
    message = message_factory.GetMessageClass(desc)()
    for field in desc.fields:
        if not draw(st.booleans()):
            continue
        repeated = field.is_repeated
        if field.type == FD.TYPE_MESSAGE:
            if depth >= 3 or field.message_type.GetOptions().map_entry:
                continue
            count = draw(st.integers(0, 3)) if repeated else 1
            for _ in range(count):
                value = draw(messages(field.message_type, names, depth + 1))
                target = getattr(message, field.name)
                (target.add() if repeated else target).CopyFrom(value)
        elif repeated:
            getattr(message, field.name).extend(draw(st.lists(_scalar(field, names), max_size=4)))
        else:
            setattr(message, field.name, draw(_scalar(field, names)))
    return message


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


async def _requests(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def _read_first(call: Any) -> grpc.StatusCode:
    try:
        async with asyncio.timeout(3):
            got = await call.read()
    except TimeoutError:
        call.cancel()  # a live stream, open and quiet: fine
        return grpc.StatusCode.OK
    if got is grpc.aio.EOF:
        code: grpc.StatusCode = await call.code()
        return code
    call.cancel()
    return grpc.StatusCode.OK


async def _call(
    t: Target, method: str, items: list[Any], caller: str, raw: bool
) -> tuple[grpc.StatusCode, str]:
    desc = METHODS[method]
    path = f"/customer.v1.CustomerService/{method}"
    channel = t.channel
    out = None if raw else message_factory.GetMessageClass(desc.output_type).FromString
    kwargs: dict[str, Any] = {"request_serializer": None if raw else _serialize}
    kwargs["response_deserializer"] = out
    md = t.metadata[caller]
    try:
        if desc.client_streaming and desc.server_streaming:
            call = channel.stream_stream(path, **kwargs)(
                _requests(items), metadata=md, timeout=DEADLINE
            )
            return await _read_first(call), ""
        if desc.client_streaming:
            await channel.stream_unary(path, **kwargs)(
                _requests(items), metadata=md, timeout=DEADLINE
            )
        elif desc.server_streaming:
            return await _read_first(
                channel.unary_stream(path, **kwargs)(items[0], metadata=md, timeout=DEADLINE)
            ), ""
        else:
            await channel.unary_unary(path, **kwargs)(items[0], metadata=md, timeout=DEADLINE)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def _run(t: Target, method: str, items: list[Any], caller: str, raw: bool = False) -> None:
    code, details = t.loop.run_until_complete(_call(t, method, items, caller, raw))
    assert code not in BAD, (
        f"{method} as {caller} answered {code.name} ({details!r}) for {items!r:.300}"
    )


@st.composite
def fuzz_case(draw: st.DrawFn, families: tuple[Family, Family]) -> tuple[str, list[Message], str]:
    method = draw(st.sampled_from(sorted(METHODS)))
    desc = METHODS[method].input_type
    count = draw(st.integers(0, 3)) if METHODS[method].client_streaming else 1
    items = [draw(messages(desc, _names(families))) for _ in range(count)]
    return method, items, draw(st.sampled_from(["operator", "app"]))


def test_random_messages_to_every_rpc(target: Target) -> None:
    @settings(
        max_examples=250, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(case=fuzz_case(target.families))
    def check(case: tuple[str, list[Message], str]) -> None:
        _run(target, *case)

    check()
    # Still serving after all of it.
    _run(target, "HealthCheck", [pb.HealthCheckRequest()], "operator")


def test_malformed_bytes_to_every_rpc(target: Target) -> None:
    @settings(
        max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(
        method=st.sampled_from(sorted(METHODS)),
        blobs=st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=3),
        caller=st.sampled_from(["operator", "app"]),
    )
    def check(method: str, blobs: list[bytes], caller: str) -> None:
        _run(target, method, blobs, caller, raw=True)

    check()
    _run(target, "HealthCheck", [pb.HealthCheckRequest()], "operator")
