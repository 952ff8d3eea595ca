"""Around one admitted call: the checks and bookkeeping of the security layer.

An app caller's role is looked up once per call and its request checked
against the scope table (inside ActivityFeed, each Subscribe as it arrives,
and charged to the caller's rate limit); streams take one of the caller's
slots and end with UNAUTHENTICATED when the token expires; unary calls
without a deadline get the default one; calls with effects, and refused
attempts, are audited.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from prometheus_client import Counter

from customer_api.rpc import Handler, RpcContext, abort, arity_of, code_of
from customer_api.security.audit import Auditor
from customer_api.security.families import FamilyResolver
from customer_api.security.ratelimit import RateLimiter, StreamSlots
from customer_api.security.scopes import Rule, Target
from customer_api.security.scoping import Caller, app_caller, check_family, check_subscription
from customer_api.security.settings import SecuritySettings
from customer_api.security.tokens import APP, Principal

log = logging.getLogger(__name__)

DENIALS = Counter(
    "customer_security_denials",
    "Calls refused by the security layer, by method and reason.",
    ["method", "reason"],
)


def _answerable(exc: BaseException) -> bool:
    """A refusal, an outage or a bug, all answered by the one abort; an abort propagates."""
    return not isinstance(exc, grpc.aio.AbortError)


def refusal(
    code: grpc.StatusCode, message: str, trailing: tuple[tuple[str, str], ...] = ()
) -> Callable[..., Any]:
    async def refuse(request: Any, context: RpcContext) -> Any:
        if trailing:
            context.set_trailing_metadata(trailing)
        await context.abort(code, message)

    return refuse


@dataclass(frozen=True)
class Shape:
    """What a guard needs of a method's handler, found once per method."""

    inner: Callable[..., Any]
    streams_in: bool
    streams_out: bool
    generator: bool  # an async generator (responses yielded, not written)

    @classmethod
    def of(cls, handler: Handler) -> Shape:
        arity = arity_of(handler)
        inner = getattr(handler, arity)
        streams_out = arity.endswith("_stream")
        generator = streams_out and inspect.isasyncgenfunction(inner)
        return cls(inner, arity.startswith("stream_"), streams_out, generator)


class Owner(Protocol):
    """What a guard uses of the security interceptor that made it."""

    settings: SecuritySettings
    limiter: RateLimiter
    streams: StreamSlots
    families: FamilyResolver
    auditor: Auditor


class CallGuard:
    """One call by one principal: the checks and bookkeeping around its handler."""

    def __init__(
        self,
        owner: Owner,
        method: str,
        rule: Rule,
        principal: Principal,
        request_id: str,
        shape: Shape,
    ) -> None:
        self.owner = owner
        self.method = method
        self.rule = rule
        self.principal = principal
        self.request_id = request_id
        self.caller: Caller | None = None
        self.shape = shape

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
        outcome = code_of(context)
        if force or self.rule.effects or outcome == "PERMISSION_DENIED":
            await self.owner.auditor.record(
                self.principal,
                self.method,
                outcome,
                request,
                response,
                self.request_id,
                self.rule.actor,
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
                    await abort(context, self.method, exc)
            yield request

    def guard(self) -> Callable[..., Any]:
        """The call's behavior: the handler with this guard's checks around it."""
        return self._generate if self.shape.generator else self._call

    async def _generate(self, request: Any, context: RpcContext) -> AsyncIterator[Any]:
        shape = self.shape
        try:
            with self.owner.streams.hold(self.principal):
                request = await self._prepare(request, context, shape.streams_in)
                responses = shape.inner(request, context)
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
            await abort(context, self.method, exc)
        finally:
            await self._audit(context, None if shape.streams_in else request, None)

    async def _call(self, request: Any, context: RpcContext) -> Any:
        shape = self.shape
        streams_in, streams = shape.streams_in, shape.streams_in or shape.streams_out
        response = None
        try:
            with self.owner.streams.hold(self.principal) if streams else nullcontext():
                request = await self._prepare(request, context, streams_in)
                if streams:
                    try:
                        async with asyncio.timeout_at(self._expiry()):
                            response = await shape.inner(request, context)
                    except TimeoutError:
                        await self._expired(context)
                    return response
                if context.time_remaining() is not None:
                    return (response := await shape.inner(request, context))
                try:
                    async with asyncio.timeout(self.owner.settings.default_deadline_seconds):
                        response = await shape.inner(request, context)
                except TimeoutError:
                    await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
            return response
        except Exception as exc:
            if not _answerable(exc):
                raise
            await abort(context, self.method, exc)
        finally:
            await self._audit(context, None if streams_in else request, response)

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
