"""The security interceptor: in front of the edge interceptor, on every RPC.

Open services (health, reflection) pass untouched. Every other call is
admitted inside the call, where its peer is known: a peer whose bad attempts
used up its allowance waits (RESOURCE_EXHAUSTED) before any costly check; the
bearer token must authenticate (UNAUTHENTICATED, saying nothing more); the
caller's kind must be allowed the method (PERMISSION_DENIED); the caller's
rate bucket must hold a token (RESOURCE_EXHAUSTED with `retry-after-ms`).
What happens around an admitted call is guard.py.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc

from customer_api.rpc import SERVICE, Handler, RpcContext, arity_of, given_request_id, rebuild
from customer_api.security.audit import Auditor
from customer_api.security.families import FamilyResolver
from customer_api.security.guard import DENIALS, CallGuard, Shape, refusal
from customer_api.security.ratelimit import PeerFailures, RateLimiter, StreamSlots
from customer_api.security.scopes import OPEN_METHODS, OPEN_SERVICES, Rule, rule_for
from customer_api.security.settings import SecuritySettings
from customer_api.security.tokens import Authenticator, Principal
from customer_core.context import Context
from customer_core.errors import Unauthenticated

log = logging.getLogger(__name__)
# The longest bearer token read (identity providers that list groups in tokens
# write several KiB); the server reads metadata up to server.MAX_METADATA_BYTES.
MAX_TOKEN_CHARS = 8192


def bearer_token(metadata: Sequence[tuple[str, Any]]) -> str:
    """The token of the one `authorization: Bearer ...` entry; Unauthenticated otherwise."""
    values = [v for k, v in metadata if k == "authorization"]
    if len(values) != 1 or not isinstance(values[0], str):
        raise Unauthenticated("expected exactly one authorization entry")
    scheme, _, token = values[0].partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not 0 < len(token) <= MAX_TOKEN_CHARS:
        raise Unauthenticated("expected a bearer token")
    return token


class SecurityInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(
        self, ctx: Context, settings: SecuritySettings, authenticator: Authenticator
    ) -> None:
        self.settings = settings
        self.authenticator = authenticator
        self.limiter = RateLimiter(ctx.valkey, settings)
        self.streams = StreamSlots(settings.max_streams_per_caller)
        self.peers = PeerFailures(settings.unauthenticated_rate_per_second)
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
        # The interceptor form, for servers built by hand (tests); build_server
        # registers `wrap` once per method instead.
        return self.wrap(details.method, handler)  # type: ignore[attr-defined]

    def wrap(self, path: str, handler: Handler) -> Handler:
        """`handler` admitting each call first (build_server registers it so, once
        per method: no interceptor chain on every call)."""
        service, _, method = path.lstrip("/").rpartition("/")
        ours = service == SERVICE.full_name
        if service in OPEN_SERVICES or (ours and method in OPEN_METHODS):
            return handler

        shape = Shape.of(handler)
        rule = rule_for(method) if ours else None

        async def admit(context: RpcContext) -> Callable[..., Any]:
            metadata: Sequence[tuple[str, Any]] = tuple(context.invocation_metadata() or ())
            return await self._admit(shape, method, rule, metadata, context.peer())

        # Admission runs inside the call, where the peer is known.
        return rebuild(handler, _deferred(handler, admit))

    async def _authenticate(self, method: str, token: str | None, peer: str) -> Principal | None:
        """The principal, or None (refused, and charged to the peer)."""
        if token is not None:
            known = self.authenticator.peek(token)
            if known is not None:
                return known  # verified before: costs nothing, so no peer limit
        try:
            if token is None:
                raise Unauthenticated("no bearer token")
            return await self.authenticator.authenticate(token)
        except Exception as exc:
            # Anything an authenticator raises refuses the call: a bug or a broken
            # key set must not turn into UNKNOWN, nor let the call through.
            DENIALS.labels(method, "unauthenticated").inc()
            self.peers.charge(peer)
            if isinstance(exc, Unauthenticated):
                log.info(
                    "call refused: unauthenticated", extra={"method": method, "reason": str(exc)}
                )
            else:
                log.error("authentication failed", extra={"method": method}, exc_info=exc)
            return None

    async def _admit(
        self,
        shape: Shape,
        method: str,
        rule: Rule | None,
        metadata: Sequence[tuple[str, Any]],
        peer: str,
    ) -> Callable[..., Any]:
        """What the call runs: a refusal, or the guarded handler."""
        try:
            token: str | None = bearer_token(metadata)
        except Unauthenticated:
            token = None
        if token is None or self.authenticator.peek(token) is None:
            # A call that would cost a check (or has no token): limited per peer
            # while its bad attempts have used up the peer's allowance.
            peer_retry = self.peers.retry_after_ms(peer)
            if peer_retry is not None:
                DENIALS.labels(method, "unauthenticated_rate").inc()
                return _rate_refusal(peer_retry)
        principal = await self._authenticate(method, token, peer)
        if principal is None:
            return refusal(grpc.StatusCode.UNAUTHENTICATED, "unauthenticated")
        call = CallGuard(
            self, method, rule or Rule(frozenset()), principal, given_request_id(metadata), shape
        )
        if rule is None or principal.kind not in rule.kinds:
            DENIALS.labels(method, "scope").inc()
            message = f"a {principal.kind} caller may not call {method}"
            return call.refusal(grpc.StatusCode.PERMISSION_DENIED, message)
        retry_ms = await self.limiter.retry_after_ms(principal)
        if retry_ms is not None:
            DENIALS.labels(method, "rate").inc()
            return _rate_refusal(retry_ms)
        return call.guard()


def _rate_refusal(retry_ms: int) -> Callable[..., Any]:
    return refusal(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "rate limit exceeded; retry later",
        (("retry-after-ms", str(retry_ms)),),
    )


def _deferred(
    handler: Handler, admit: Callable[[RpcContext], Awaitable[Callable[..., Any]]]
) -> Callable[..., Any]:
    """A behavior of the handler's shape that admits the call, then runs what
    admission chose (an async generator for a generator handler)."""
    arity = arity_of(handler)
    if arity.endswith("_stream") and inspect.isasyncgenfunction(getattr(handler, arity)):

        async def generate(request: Any, context: RpcContext) -> AsyncIterator[Any]:
            behavior = await admit(context)
            if inspect.isasyncgenfunction(behavior):
                async for response in behavior(request, context):
                    yield response
            else:
                await behavior(request, context)

        return generate

    async def call(request: Any, context: RpcContext) -> Any:
        behavior = await admit(context)
        return await behavior(request, context)

    return call
