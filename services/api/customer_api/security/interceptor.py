"""The security interceptor: in front of the edge interceptor, on every RPC.

In order: open services (health, reflection) pass untouched; the bearer token
must authenticate (UNAUTHENTICATED, saying nothing more); the caller's kind
must be allowed the method (PERMISSION_DENIED); the caller's rate bucket must
hold a token (RESOURCE_EXHAUSTED with `retry-after-ms`). Then, around the
call: an app caller's request must name its own family's resources (inside
ActivityFeed, each Subscribe is checked as it arrives); streams take one of
the caller's slots; unary calls without a deadline get the default one; calls
with effects, and refused attempts, are audited.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import nullcontext
from typing import Any, TypeAlias

import grpc
from prometheus_client import Counter

from customer_api.errors import status_for
from customer_api.security.audit import Auditor
from customer_api.security.families import FamilyResolver
from customer_api.security.ratelimit import RateLimiter, StreamSlots
from customer_api.security.scopes import OPEN_METHODS, OPEN_SERVICES, Rule, Target, rule_for
from customer_api.security.scoping import Caller, app_caller, check_family, check_subscription
from customer_api.security.settings import SecuritySettings
from customer_api.security.tokens import APP, Authenticator, Principal
from customer_api.servicers.base import SERVICE, RpcContext
from customer_core.context import Context
from customer_core.db import outage
from customer_core.errors import CustomerServiceError, Unauthenticated

log = logging.getLogger(__name__)

DENIALS = Counter(
    "customer_security_denials",
    "Calls refused by the security layer, by method and reason.",
    ["method", "reason"],
)

_MAX_TOKEN_CHARS = 8192
_ARITIES = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
_FACTORIES = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


def bearer_token(metadata: Sequence[tuple[str, Any]]) -> str:
    """The token of the one `authorization: Bearer ...` entry; Unauthenticated otherwise."""
    values = [v for k, v in metadata if k == "authorization"]
    if len(values) != 1 or not isinstance(values[0], str):
        raise Unauthenticated("expected exactly one authorization entry")
    scheme, _, token = values[0].partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not 0 < len(token) <= _MAX_TOKEN_CHARS:
        raise Unauthenticated("expected a bearer token")
    return token


def _request_id(metadata: Sequence[tuple[str, Any]]) -> str:
    for key, value in metadata:
        if key == "x-request-id" and isinstance(value, str) and 0 < len(value) <= 128:
            return value
    return ""


def _outcome(context: RpcContext) -> str:
    code = context.code()
    if code is None:
        return "OK"
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


def _answerable(exc: BaseException) -> bool:
    """A refusal or an outage the caller should hear about; anything else propagates."""
    return isinstance(exc, CustomerServiceError) or outage.is_outage(exc)


async def _abort(context: RpcContext, exc: BaseException) -> None:
    if isinstance(exc, CustomerServiceError):
        await context.abort(status_for(exc), str(exc))
    log.warning("access check could not run", extra={"error": type(exc).__name__})
    await context.abort(grpc.StatusCode.UNAVAILABLE, "a dependency is unavailable; retry")


def arity_of(handler: Handler) -> str:
    return next(a for a in _ARITIES if getattr(handler, a) is not None)


def rebuild(
    handler: Handler,
    behavior: Callable[..., Any],
    request_deserializer: Callable[[bytes], Any] | None = None,
) -> Handler:
    """A handler of the same kind as `handler`, calling `behavior`."""
    factory: Callable[..., Handler] = _FACTORIES[arity_of(handler)]
    return factory(
        behavior,
        request_deserializer=request_deserializer or handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class SecurityInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(
        self, ctx: Context, settings: SecuritySettings, authenticator: Authenticator
    ) -> None:
        self.settings = settings
        self.authenticator = authenticator
        self.limiter = RateLimiter(ctx.valkey, settings)
        self.streams = StreamSlots(settings.max_streams_per_caller)
        self.families = FamilyResolver(ctx)
        self.auditor = Auditor(ctx)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(details)
        if handler is None:
            return handler
        service, _, method = details.method.lstrip("/").rpartition("/")
        ours = service == SERVICE.full_name
        if service in OPEN_SERVICES or (ours and method in OPEN_METHODS):
            return handler
        metadata: Sequence[tuple[str, Any]] = tuple(details.invocation_metadata or ())
        request_id = _request_id(metadata)
        try:
            principal = await self.authenticator.authenticate(bearer_token(metadata))
        except Exception as exc:
            # Anything an authenticator raises refuses the call: a bug or a broken
            # key set must not turn into UNKNOWN, nor let the call through.
            DENIALS.labels(method, "unauthenticated").inc()
            if isinstance(exc, Unauthenticated):
                log.info(
                    "call refused: unauthenticated", extra={"method": method, "reason": str(exc)}
                )
            else:
                log.error("authentication failed", extra={"method": method}, exc_info=exc)
            return rebuild(handler, _refusal(grpc.StatusCode.UNAUTHENTICATED, "unauthenticated"))
        rule = rule_for(method) if ours else None
        call = _Call(self, method, rule or Rule(frozenset()), principal, request_id)
        if rule is None or principal.kind not in rule.kinds:
            DENIALS.labels(method, "scope").inc()
            message = f"a {principal.kind} caller may not call {method}"
            return rebuild(handler, call.refusal(grpc.StatusCode.PERMISSION_DENIED, message))
        retry_ms = await self.limiter.retry_after_ms(principal)
        if retry_ms is not None:
            DENIALS.labels(method, "rate").inc()
            return rebuild(
                handler,
                _refusal(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "rate limit exceeded; retry later",
                    (("retry-after-ms", str(retry_ms)),),
                ),
            )
        return rebuild(handler, call.guard(handler))


def _refusal(
    code: grpc.StatusCode, message: str, trailing: tuple[tuple[str, str], ...] = ()
) -> Callable[..., Any]:
    async def refuse(request: Any, context: RpcContext) -> Any:
        if trailing:
            context.set_trailing_metadata(trailing)
        await context.abort(code, message)

    return refuse


class _Call:
    """One call by one principal: the checks and bookkeeping around its handler."""

    def __init__(
        self,
        owner: SecurityInterceptor,
        method: str,
        rule: Rule,
        principal: Principal,
        request_id: str,
    ) -> None:
        self.owner = owner
        self.method = method
        self.rule = rule
        self.principal = principal
        self.request_id = request_id
        self.caller: Caller | None = None

    def refusal(self, code: grpc.StatusCode, message: str) -> Callable[..., Any]:
        async def refuse(request: Any, context: RpcContext) -> Any:
            try:
                await context.abort(code, message)
            finally:
                await self._audit(context, request, None, force=True)

        return refuse

    async def _audit(
        self, context: RpcContext, request: Any, response: Any, *, force: bool = False
    ) -> None:
        outcome = _outcome(context)
        if force or self.rule.effects or outcome == "PERMISSION_DENIED":
            await self.owner.auditor.record(
                self.principal, self.method, outcome, request, response, self.request_id
            )

    async def _caller(self) -> Caller:
        """The app caller by role, looked up once per call (roles can change)."""
        if self.caller is None:
            self.caller = await app_caller(
                self.owner.families,
                self.principal,
                self.owner.settings.family_service_accounts,
            )
        return self.caller

    async def _check(self, request: Any) -> None:
        if self.principal.kind == APP:
            caller = await self._caller()
            await check_family(self.owner.families, caller, self.method, self.rule, request)

    async def _checked(
        self, requests: AsyncIterator[Any], context: RpcContext
    ) -> AsyncIterator[Any]:
        async for request in requests:
            feed = self.rule.target is Target.SUBSCRIPTION
            if feed and request.WhichOneof("action") == "subscribe":
                # Each Subscribe costs a call: a stream is no way around the limit.
                retry_ms = await self.owner.limiter.retry_after_ms(self.principal)
                if retry_ms is not None:
                    DENIALS.labels(self.method, "rate").inc()
                    context.set_trailing_metadata((("retry-after-ms", str(retry_ms)),))
                    await context.abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED, "rate limit exceeded; retry later"
                    )
            if self.principal.kind == APP:
                try:
                    caller = await self._caller()
                    await check_subscription(self.owner.families, caller, self.rule, request)
                except Exception as exc:
                    if not _answerable(exc):
                        raise
                    await _abort(context, exc)
            yield request

    def guard(self, handler: Handler) -> Callable[..., Any]:
        arity = arity_of(handler)
        inner = getattr(handler, arity)
        streams_in = arity.startswith("stream_")
        streams_out = arity.endswith("_stream")
        if streams_out and inspect.isasyncgenfunction(inner):

            async def generate(request: Any, context: RpcContext) -> AsyncIterator[Any]:
                try:
                    with self.owner.streams.hold(self.principal):
                        request = await self._prepare(request, context, streams_in)
                        responses = inner(request, context)
                        while True:
                            # The token's expiry bounds each wait, never a yield.
                            try:
                                async with asyncio.timeout_at(self._expiry()):
                                    response = await anext(responses)
                            except StopAsyncIteration:
                                break
                            except TimeoutError:
                                await responses.aclose()
                                await self._expired(context)
                            yield response
                except Exception as exc:
                    if not _answerable(exc):
                        raise
                    await _abort(context, exc)
                finally:
                    await self._audit(context, None if streams_in else request, None)

            return generate

        deadline = (
            None if (streams_in or streams_out) else self.owner.settings.default_deadline_seconds
        )

        async def call(request: Any, context: RpcContext) -> Any:
            response = None
            try:
                with (
                    self.owner.streams.hold(self.principal)
                    if (streams_in or streams_out)
                    else nullcontext()
                ):
                    request = await self._prepare(request, context, streams_in)
                    if streams_in or streams_out:
                        try:
                            async with asyncio.timeout_at(self._expiry()):
                                response = await inner(request, context)
                        except TimeoutError:
                            await self._expired(context)
                        return response
                    timeout = deadline if context.time_remaining() is None else None
                    try:
                        async with asyncio.timeout(timeout):
                            response = await inner(request, context)
                    except TimeoutError:
                        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
                return response
            except Exception as exc:
                if not _answerable(exc):
                    raise
                await _abort(context, exc)
            finally:
                await self._audit(context, None if streams_in else request, response)

        return call

    def _expiry(self) -> float | None:
        """When the caller's token expires, on the event loop's clock."""
        expires = self.principal.expires_at
        if expires is None:
            return None
        return asyncio.get_running_loop().time() + (expires - time.time())

    async def _expired(self, context: RpcContext) -> None:
        DENIALS.labels(self.method, "expired").inc()
        await context.abort(
            grpc.StatusCode.UNAUTHENTICATED, "token expired; reconnect with a fresh one"
        )

    async def _prepare(self, request: Any, context: RpcContext, streams_in: bool) -> Any:
        if streams_in:
            if self.principal.kind == APP:
                await self._caller()  # a token naming nobody ends the stream now
            return self._checked(request, context)
        await self._check(request)
        return request
