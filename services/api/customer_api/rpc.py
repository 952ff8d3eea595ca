"""The RPC types and helpers every layer of the api shares: a leaf module.

The interceptors, flow control and servicers all import it; it imports
nothing of the api but the error table. Its `abort` is the one place a
failure becomes a status: a lost database or Valkey, or a lost race, first
becomes the service's error (`usecases.failures`), the service's errors map
by `errors.py`, anything else is INTERNAL without its text (the client gets
the request id to quote; the log has the rest).
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol, TypeAlias

import grpc

from customer_api.errors import status_for
from customer_core.errors import CustomerServiceError, Unavailable
from customer_core.pb.customer.v1 import customer_pb2
from customer_core.telemetry import request_id_var
from customer_core.usecases.failures import as_service_error

log = logging.getLogger(__name__)

# The servicer context, whatever the request and response types.
RpcContext: TypeAlias = grpc.aio.ServicerContext[Any, Any]

SERVICE = customer_pb2.DESCRIPTOR.services_by_name["CustomerService"]

_ARITIES = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
_FACTORIES = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class Wraps(Protocol):
    """Wraps a method's handler once, when it is registered (see edge.Edge)."""

    def wrap(self, path: str, handler: Handler) -> Handler: ...


def arity_of(handler: Handler) -> str:
    return next(a for a in _ARITIES if getattr(handler, a) is not None)


def rebuild(
    handler: Handler,
    behavior: Callable[..., Any],
    request_deserializer: Callable[[bytes], Any] | None = None,
    response_serializer: Callable[[Any], bytes] | None = None,
) -> Handler:
    """A handler of the same kind as `handler`, calling `behavior`."""
    factory: Callable[..., Handler] = _FACTORIES[arity_of(handler)]
    return factory(
        behavior,
        request_deserializer=request_deserializer or handler.request_deserializer,
        response_serializer=response_serializer or handler.response_serializer,
    )


# Generated request ids: a random per-process prefix and a counter, as unique
# as uuid4 across replicas for correlating logs, at a fifth of its cost (no
# system call per call).
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count()


@dataclass(frozen=True, slots=True)
class Encoded:
    """A unary response already serialized as the method's message (a cached
    read): the edge sends its bytes as they are. Only a servicer under the edge
    may return one."""

    data: bytes


def given_request_id(metadata: Iterable[tuple[str, Any]] | None) -> str:
    """The client's `x-request-id`, or "" when it sent none (or an unusable one)."""
    for key, value in metadata or ():
        if key == "x-request-id" and isinstance(value, str) and 0 < len(value) <= 128:
            return value
    return ""


def request_id(metadata: Iterable[tuple[str, Any]] | None) -> str:
    """The client's request id, else a fresh one."""
    return given_request_id(metadata) or f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def code_of(context: RpcContext) -> str:
    """The name of the status the call ended (or is ending) with."""
    code = context.code()
    if code is None:
        return "OK"
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


async def abort(context: RpcContext, method: str, exc: BaseException) -> NoReturn:
    """Abort the RPC with the status `exc` maps to (raises AbortError)."""
    failure = as_service_error(exc)
    if failure is not None:
        # A lost database or Valkey (UNAVAILABLE), or a lost race (ABORTED): retryable.
        if isinstance(failure, Unavailable):
            log.warning("dependency unavailable", extra={"method": method, "error": repr(exc)})
        exc = failure
    if isinstance(exc, CustomerServiceError):
        code = status_for(exc)
        if code is not grpc.StatusCode.INTERNAL:
            await context.abort(code, str(exc))
    rid = request_id_var.get() or request_id(context.invocation_metadata())
    log.error("internal error", extra={"method": method, "request_id": rid}, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {rid})")
