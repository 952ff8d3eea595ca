"""What every RPC passes through, innermost: wrapped around each handler once.

It only translates: a request id into the log context, the RPC into metrics,
the service's errors into status codes (one table, `errors.py`), and a lost
database or cache into UNAVAILABLE. A client deadline cancels the handler's
task, which cancels its database query, so it bounds the work it started.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc

from customer_api.malformed import MESSAGE, UNDECODABLE, guard_handler, guarded, tolerant
from customer_api.rpc import (
    Encoded,
    Handler,
    RpcContext,
    Wraps,
    abort,
    arity_of,
    code_of,
    rebuild,
    request_id,
)
from customer_api.rpc_metrics import (
    RPC_IN_FLIGHT,
    RPC_REQUESTS,
    RPC_SECONDS,
    SERVER_ERROR_CODES,
    short_name,
)
from customer_core.telemetry import request_id_var

log = logging.getLogger(__name__)


class Registrar:
    """Stands in for the server in generated `add_*_to_server` calls: registers
    each handler with the edge around it."""

    def __init__(self, server: grpc.aio.Server, edge: Edge) -> None:
        self._server = server
        self._edge = edge

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Handler]) -> None:
        wrapped = {name: self._edge.wrap(f"/{service}/{name}", h) for name, h in handlers.items()}
        # In grpc.aio.Server since gRPC 1.63; the typing stubs do not have it yet.
        self._server.add_registered_method_handlers(service, wrapped)  # type: ignore[attr-defined]

    def add_generic_rpc_handlers(self, generic: Sequence[grpc.GenericRpcHandler[Any, Any]]) -> None:
        self._server.add_generic_rpc_handlers([_EdgeGeneric(g, self._edge) for g in generic])


class _EdgeGeneric(grpc.GenericRpcHandler):  # type: ignore[type-arg]
    """A generic handler's methods, each wrapped once (the first time it is looked up)."""

    def __init__(self, inner: grpc.GenericRpcHandler[Any, Any], edge: Edge) -> None:
        self._inner = inner
        self._edge = edge
        self._wrapped: dict[str, Handler] = {}

    def service(self, details: grpc.HandlerCallDetails) -> Handler | None:
        path: str = details.method  # type: ignore[attr-defined]
        wrapped = self._wrapped.get(path)
        if wrapped is None:
            handler = self._inner.service(details)
            if handler is None:
                return None  # not remembered: a client could name any number of methods
            wrapped = self._wrapped[path] = self._edge.wrap(path, handler)
        return wrapped


def _encoded_or(serialize: Callable[[Any], bytes] | None) -> Callable[[Any], bytes] | None:
    """The method's serializer, letting through a response that is already encoded.

    A cached hot-path read is kept encoded (`Encoded`); parsing it only for
    gRPC to serialize it again cost more than the look-up.
    """
    if serialize is None:
        return None

    def encode(response: Any) -> bytes:
        if type(response) is Encoded:
            return response.data
        return serialize(response)

    return encode


class Edge:
    """Wraps every method's handler once, when it is registered.

    Not an interceptor: gRPC runs its interceptor chain (a coroutine per
    interceptor, a call-details object, a handler search) on every call, and the
    edge's wrapping depends on the method alone. Pass `registrar(server)` where a
    generated `add_*_to_server` takes the server. The security layer is given
    as `around` (build_server); interceptors, if a server has any, still run
    first and find the handlers already wrapped.
    """

    def __init__(self, *, guard_malformed: bool = False, around: Sequence[Wraps] = ()) -> None:
        # Without a security layer nothing stands between gRPC and the edge, so
        # the edge answers undecodable requests itself (malformed.py).
        self._guard_malformed = guard_malformed
        # Wrapped around the edge, innermost first, once per method: the security
        # layer as interceptors cost a coroutine each, and their wrapping, per call.
        self._around = tuple(around)

    def registrar(self, server: grpc.aio.Server) -> Registrar:
        return Registrar(server, self)

    def wrap(self, path: str, handler: Handler) -> Handler:
        """`handler` of the method `/{service}/{method}` with the edge around it,
        and what the edge was given to put around itself."""
        method = short_name(path)
        arity = arity_of(handler)
        behavior = getattr(handler, arity)
        parse = handler.request_deserializer
        guard = self._guard_malformed and parse is not None
        if arity == "unary_unary" and guard and not self._around and parse is not None:
            # The hot path with nothing between gRPC and the edge: one Python
            # frame per call parses, runs, counts and serializes (each parser or
            # serializer gRPC calls back into is a frame of its own).
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, behavior, parse, handler.response_serializer)
            )
        wrapped = self._wrap(method, arity, handler, guard and not self._around)
        for outer in self._around:
            wrapped = outer.wrap(path, wrapped)
        # Undecodable bytes are answered outside the layers, before they look in.
        return guard_handler(path, wrapped) if guard and self._around else wrapped

    def _wrap(self, method: str, arity: str, handler: Handler, guard: bool) -> Handler:
        behavior = getattr(handler, arity)
        parse = handler.request_deserializer
        if guard:
            parse = tolerant(parse)
        if arity == "unary_unary":
            wrapped = self._unary(method, behavior)
        else:
            if guard:
                behavior = guarded(behavior, arity.startswith("stream_"))
            wrapped = (
                self._stream(method, behavior)
                if arity.endswith("_stream")
                else self._unary(method, behavior)
            )
        return rebuild(
            handler,
            wrapped,
            request_deserializer=parse,
            response_serializer=_encoded_or(handler.response_serializer),
        )

    @staticmethod
    def _unary(
        method: str,
        behavior: Any,
        parse: Callable[[bytes], Any] | None = None,
        serialize: Callable[[Any], bytes] | None = None,
    ) -> Any:
        """The unary wrapper; given `parse`, it takes and gives bytes (gRPC then
        calls no parser or serializer of its own)."""
        seconds = RPC_SECONDS.labels(method)
        in_flight = RPC_IN_FLIGHT.labels(method)
        ok = RPC_REQUESTS.labels(method, "OK")
        for code in SERVER_ERROR_CODES:
            RPC_REQUESTS.labels(method, code)

        async def wrapped(request: Any, context: RpcContext) -> Any:
            if parse is not None:
                try:
                    request = parse(request)
                except UNDECODABLE:
                    # Counted, but not timed: the handler never ran.
                    RPC_REQUESTS.labels(method, "INVALID_ARGUMENT").inc()
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, MESSAGE)
            # Each RPC runs in its own task, with its own copy of the context: the
            # id is not reset afterwards (a reset from a coroutine that gRPC closes
            # outside that task raised ValueError).
            request_id_var.set(request_id(context.invocation_metadata()))
            start = time.perf_counter()
            in_flight.inc()
            try:
                response = await behavior(request, context)
                if parse is None:
                    return response
                if type(response) is Encoded:
                    return response.data
                return response if serialize is None else serialize(response)
            except Exception as exc:
                if isinstance(exc, grpc.aio.AbortError):
                    raise
                await abort(context, method, exc)
            finally:
                in_flight.dec()
                seconds.observe(time.perf_counter() - start)
                code = code_of(context)
                (ok if code == "OK" else RPC_REQUESTS.labels(method, code)).inc()

        return wrapped

    @classmethod
    def _stream(cls, method: str, behavior: Any) -> Any:
        # A streaming handler written as a coroutine (using context.write) is
        # wrapped like a unary one; only async generators are iterated here.
        if not inspect.isasyncgenfunction(behavior):
            return cls._unary(method, behavior)
        for code in SERVER_ERROR_CODES:
            RPC_REQUESTS.labels(method, code)
        seconds = RPC_SECONDS.labels(method)
        in_flight = RPC_IN_FLIGHT.labels(method)

        async def wrapped(request: Any, context: RpcContext) -> AsyncIterator[Any]:
            request_id_var.set(request_id(context.invocation_metadata()))
            start = time.perf_counter()
            in_flight.inc()
            try:
                async for response in behavior(request, context):
                    yield response
            except Exception as exc:
                if isinstance(exc, grpc.aio.AbortError):
                    raise
                await abort(context, method, exc)
            finally:
                in_flight.dec()
                seconds.observe(time.perf_counter() - start)
                RPC_REQUESTS.labels(method, code_of(context)).inc()

        return wrapped
