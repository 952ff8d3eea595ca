"""Bytes that do not parse as the request message are INVALID_ARGUMENT.

Left alone, gRPC answers UNKNOWN and names the parser's exception. This guard
(the outermost interceptor, installed whatever AUTH_MODE is) swaps each
handler's request parser for one that marks undecodable input, and answers
for it before any handler runs.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from customer_api.rpc import RpcContext
from customer_api.security.guard import Handler, arity_of, rebuild

_MESSAGE = "the request is not a valid protobuf message of the method's type"


class _Malformed:
    """Stands in for a request that could not be parsed."""


MALFORMED = _Malformed()


def _tolerant(parse: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if parse is None:
        return None

    def parse_or_mark(data: bytes) -> Any:
        try:
            return parse(data)
        except (DecodeError, ValueError, TypeError):
            return MALFORMED

    return parse_or_mark


async def _checked(requests: AsyncIterator[Any], context: RpcContext) -> AsyncIterator[Any]:
    async for request in requests:
        if request is MALFORMED:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _MESSAGE)
        yield request


def _guard(inner: Callable[..., Any], streams_in: bool) -> Callable[..., Any]:
    # Keep the kind of callable gRPC expects: an async generator stays one.
    if inspect.isasyncgenfunction(inner):

        async def generate(request: Any, context: RpcContext) -> AsyncIterator[Any]:
            if streams_in:
                request = _checked(request, context)
            elif request is MALFORMED:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _MESSAGE)
            async for response in inner(request, context):
                yield response

        return generate

    async def call(request: Any, context: RpcContext) -> Any:
        if streams_in:
            request = _checked(request, context)
        elif request is MALFORMED:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _MESSAGE)
        return await inner(request, context)

    return call


class MalformedRequestGuard(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self) -> None:
        # Per method, the last inner handler seen and its guarded copy. Without
        # authentication the inner handler is the same object on every call (the
        # edge wraps each method once), so the copy is reused: rebuilding it per
        # call was a measurable share of a cached GetCustomer (bench/api.py).
        # With authentication each call brings its own handler and a new copy.
        self._last: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None:
            return handler
        last = self._last.get(details.method)
        if last is not None and last[0] is handler:
            return last[1]
        arity = arity_of(handler)
        behavior = _guard(getattr(handler, arity), arity.startswith("stream_"))
        guarded = rebuild(
            handler, behavior, request_deserializer=_tolerant(handler.request_deserializer)
        )
        self._last[details.method] = (handler, guarded)
        return guarded
