"""Bytes that do not parse as the request message are INVALID_ARGUMENT.

Left alone, gRPC answers UNKNOWN and names the parser's exception. Each
handler's request parser is swapped for one that marks undecodable input, and
the call is answered before any handler runs, by the edge, outermost: the
security layer never looks into a request that did not parse
(`guard_handler`). Without that layer, a unary call's request is parsed in the
edge's own wrapper, which answers `UNDECODABLE` bytes itself.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from customer_api.rpc import Handler, RpcContext, arity_of, rebuild
from customer_api.rpc_metrics import RPC_REQUESTS, short_name

MESSAGE = "the request is not a valid protobuf message of the method's type"


class _Malformed:
    """Stands in for a request that could not be parsed."""


MALFORMED = _Malformed()
# What a request parser raises on bytes that are not the message.
UNDECODABLE = (DecodeError, ValueError, TypeError)


def tolerant(parse: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if parse is None:
        return None

    def parse_or_mark(data: bytes) -> Any:
        try:
            return parse(data)
        except UNDECODABLE:
            return MALFORMED

    return parse_or_mark


async def _checked(requests: AsyncIterator[Any], context: RpcContext) -> AsyncIterator[Any]:
    async for request in requests:
        if request is MALFORMED:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, MESSAGE)
        yield request


def guarded(
    inner: Callable[..., Any], streams_in: bool, method: str | None = None
) -> Callable[..., Any]:
    """`inner` answering a malformed request INVALID_ARGUMENT. Given `method`, a
    malformed single request is counted in the RPC metrics here: the guard is
    then outside the edge, which counts every call that reaches it (a malformed
    message in a request stream is found inside the edge, and counted there)."""

    async def refuse(context: RpcContext) -> None:
        if method is not None:
            RPC_REQUESTS.labels(method, "INVALID_ARGUMENT").inc()
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, MESSAGE)

    # Keep the kind of callable gRPC expects: an async generator stays one.
    if inspect.isasyncgenfunction(inner):

        async def generate(request: Any, context: RpcContext) -> AsyncIterator[Any]:
            if streams_in:
                request = _checked(request, context)
            elif request is MALFORMED:
                await refuse(context)
            async for response in inner(request, context):
                yield response

        return generate

    async def call(request: Any, context: RpcContext) -> Any:
        if streams_in:
            request = _checked(request, context)
        elif request is MALFORMED:
            await refuse(context)
        return await inner(request, context)

    return call


def guard_handler(path: str, handler: Handler) -> Handler:
    """`handler` (of the method `path`) answering undecodable bytes INVALID_ARGUMENT,
    counted, before anything else of it runs: the edge puts this outermost, around
    the security layer, for the methods it does not parse itself."""
    if handler.request_deserializer is None:
        return handler
    arity = arity_of(handler)
    behavior = guarded(getattr(handler, arity), arity.startswith("stream_"), short_name(path))
    return rebuild(handler, behavior, request_deserializer=tolerant(handler.request_deserializer))
