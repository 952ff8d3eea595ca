"""What the server needs from the security settings: wrappers, credentials, limits."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import grpc
from prometheus_client import Gauge

from customer_api.rpc import Wraps
from customer_api.security.interceptor import SecurityInterceptor
from customer_api.security.settings import SecuritySettings, load_security_settings
from customer_api.security.tls import server_credentials
from customer_api.security.tokens import build_authenticator
from customer_core.context import Context

log = logging.getLogger(__name__)

AUTH_DISABLED = Gauge(
    "customer_auth_disabled",
    "1 while the api serves with AUTH_MODE=none: every caller is an operator, unlimited.",
)


@dataclass
class ServerSecurity:
    settings: SecuritySettings
    # Around the edge (edge.Edge `around`), so refused calls do no work at all; the
    # edge answers undecodable bytes outside them.
    wrappers: list[Wraps] = field(default_factory=list)
    credentials: grpc.ServerCredentials | None = None


def server_security(ctx: Context, settings: SecuritySettings | None = None) -> ServerSecurity:
    """From the given settings, or from the environment (AUTH_MODE is required there)."""
    s = settings if settings is not None else load_security_settings()
    out = ServerSecurity(settings=s)
    if s.auth_enabled:
        authenticator = build_authenticator(s.auth_mode, s.static_tokens_file, s.jwt)
        out.wrappers = [SecurityInterceptor(ctx, s, authenticator)]
        AUTH_DISABLED.set(0)
    else:
        AUTH_DISABLED.set(1)
        log.warning(
            "AUTH_MODE=none: no authentication, every caller is an operator with no rate"
            " limit, deadline or audit; for development only"
        )
    if s.tls is not None:
        out.credentials = server_credentials(s.tls)
    return out
