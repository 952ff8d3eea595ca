"""The security variables, read and checked once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from customer_core.config import EnvReader, Variable, register
from customer_core.errors import ConfigError

AUTH_MODES = ("none", "static", "jwt")
# Asymmetric algorithms only: a shared-secret or "none" token could be forged by
# anyone who can read the public key set.
ALLOWED_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "EdDSA",
)

VARIABLES = register(
    Variable("TLS_CERT_FILE", "", "PEM server certificate chain; set with TLS_KEY_FILE for TLS"),
    Variable("TLS_KEY_FILE", "", "PEM private key of TLS_CERT_FILE"),
    Variable(
        "TLS_CLIENT_CA_FILE", "", "PEM CA bundle; when set, clients need a certificate (mTLS)"
    ),
    Variable(
        "AUTH_MODE",
        "",
        "required: jwt, static (development tokens) or none (no authentication: development"
        " only; `customer-service dev` sets it)",
    ),
    Variable(
        "AUTH_FAMILY_SERVICE_ACCOUNTS",
        "false",
        "accept family-level app tokens (sub not a customer) as the family's service account",
    ),
    Variable("AUTH_STATIC_TOKENS_FILE", "", "JSON list of development tokens (AUTH_MODE=static)"),
    Variable("JWT_JWKS_FILE", "", "JWKS file with the token signing keys (AUTH_MODE=jwt)"),
    Variable("JWT_JWKS_URL", "", "https URL of the JWKS, fetched and refreshed (AUTH_MODE=jwt)"),
    Variable("JWT_ISSUER", "", "required `iss` of tokens (AUTH_MODE=jwt)"),
    Variable("JWT_AUDIENCE", "", "required `aud` of tokens (AUTH_MODE=jwt)"),
    Variable("JWT_LEEWAY_SECONDS", "30", "clock skew allowed on exp, nbf and iat"),
    Variable("JWT_ALGORITHMS", "RS256,ES256,EdDSA", "accepted signing algorithms (asymmetric)"),
    Variable("RATE_LIMIT_PER_SECOND", "100", "calls per second per caller (0: no limit)"),
    Variable("RATE_LIMIT_BURST", "200", "calls a caller may make at once above its rate"),
    Variable(
        "RATE_LIMIT_ORDER_SERVICE_PER_SECOND",
        "2000",
        "calls per second for an order-service caller (burst: twice that; 0: no limit)",
    ),
    Variable(
        "RATE_LIMIT_UNAUTHENTICATED_PER_SECOND",
        "5",
        "failed authentications per second per peer address and replica (burst: twice that;"
        " 0: no limit)",
    ),
    Variable("MAX_STREAMS_PER_CALLER", "20", "open streams per caller on one replica"),
    Variable(
        "DEFAULT_DEADLINE_SECONDS", "10", "deadline given to unary calls that arrive without one"
    ),
    Variable("GRPC_MAX_RECEIVE_BYTES", "1048576", "largest request message accepted"),
)


@dataclass(frozen=True)
class TlsSettings:
    cert_file: Path
    key_file: Path
    client_ca_file: Path | None


@dataclass(frozen=True)
class JwtSettings:
    jwks_file: Path | None
    jwks_url: str | None
    issuer: str
    audience: str
    leeway_seconds: int
    algorithms: tuple[str, ...]


@dataclass(frozen=True)
class SecuritySettings:
    tls: TlsSettings | None
    auth_mode: str
    static_tokens_file: Path | None = None
    jwt: JwtSettings | None = None
    rate_per_second: float = 100.0
    rate_burst: int = 200
    order_service_rate_per_second: float = 2000.0
    max_streams_per_caller: int = 20
    default_deadline_seconds: float = 10.0
    max_receive_bytes: int = 1024 * 1024
    family_service_accounts: bool = False
    unauthenticated_rate_per_second: float = 5.0

    @property
    def auth_enabled(self) -> bool:
        return self.auth_mode != "none"


def _file(r: EnvReader, name: str) -> Path | None:
    raw = r.optional(name)
    if raw is None:
        return None
    path = Path(raw)
    if not path.is_file():
        raise ConfigError(name, f"no readable file at {raw!r}")
    return path


def _tls(r: EnvReader) -> TlsSettings | None:
    cert, key = _file(r, "TLS_CERT_FILE"), _file(r, "TLS_KEY_FILE")
    ca = _file(r, "TLS_CLIENT_CA_FILE")
    if cert is None and key is None:
        if ca is not None:
            raise ConfigError("TLS_CLIENT_CA_FILE", "mTLS needs TLS_CERT_FILE and TLS_KEY_FILE")
        return None
    if cert is None:
        raise ConfigError("TLS_CERT_FILE", "required when TLS_KEY_FILE is set")
    if key is None:
        raise ConfigError("TLS_KEY_FILE", "required when TLS_CERT_FILE is set")
    return TlsSettings(cert_file=cert, key_file=key, client_ca_file=ca)


def _algorithms(r: EnvReader) -> tuple[str, ...]:
    names = tuple(a.strip() for a in r.text("JWT_ALGORITHMS").split(",") if a.strip())
    bad = [a for a in names if a not in ALLOWED_ALGORITHMS]
    if not names or bad:
        raise ConfigError(
            "JWT_ALGORITHMS", f"must list some of {', '.join(ALLOWED_ALGORITHMS)}, got {bad}"
        )
    return names


def _jwt(r: EnvReader) -> JwtSettings:
    jwks_file, jwks_url = _file(r, "JWT_JWKS_FILE"), r.optional("JWT_JWKS_URL")
    if (jwks_file is None) == (jwks_url is None):
        raise ConfigError("JWT_JWKS_FILE", "set exactly one of JWT_JWKS_FILE and JWT_JWKS_URL")
    if jwks_url is not None and not _trusted_url(jwks_url):
        raise ConfigError("JWT_JWKS_URL", "must be https:// (http:// only for localhost)")
    for name in ("JWT_ISSUER", "JWT_AUDIENCE"):
        if r.optional(name) is None:
            raise ConfigError(name, "required when AUTH_MODE=jwt")
    return JwtSettings(
        jwks_file=jwks_file,
        jwks_url=jwks_url,
        issuer=r.text("JWT_ISSUER"),
        audience=r.text("JWT_AUDIENCE"),
        leeway_seconds=r.integer("JWT_LEEWAY_SECONDS", 0, 600),
        algorithms=_algorithms(r),
    )


def _trusted_url(url: str) -> bool:
    if url.startswith("https://"):
        return True
    host = url.removeprefix("http://").split("/", 1)[0].rsplit(":", 1)[0]
    return url.startswith("http://") and host in ("localhost", "127.0.0.1", "[::1]")


def load_security_settings(env: Mapping[str, str] | None = None) -> SecuritySettings:
    """Read and check every security variable; ConfigError names the first bad one."""
    r = EnvReader(os.environ if env is None else env)
    if r.optional("AUTH_MODE") is None:
        # No insecure default: an api that forgot its auth settings must not
        # come up open to everyone.
        raise ConfigError("AUTH_MODE", f"required: set one of {', '.join(AUTH_MODES)}")
    mode = r.choice("AUTH_MODE", AUTH_MODES)
    static_file = _file(r, "AUTH_STATIC_TOKENS_FILE")
    if mode == "static" and static_file is None:
        raise ConfigError("AUTH_STATIC_TOKENS_FILE", "required when AUTH_MODE=static")
    return SecuritySettings(
        tls=_tls(r),
        auth_mode=mode,
        static_tokens_file=static_file,
        jwt=_jwt(r) if mode == "jwt" else None,
        rate_per_second=r.number("RATE_LIMIT_PER_SECOND", 0, 1_000_000),
        rate_burst=r.integer("RATE_LIMIT_BURST", 1, 10_000_000),
        order_service_rate_per_second=r.number("RATE_LIMIT_ORDER_SERVICE_PER_SECOND", 0, 1_000_000),
        max_streams_per_caller=r.integer("MAX_STREAMS_PER_CALLER", 1, 100_000),
        default_deadline_seconds=r.number("DEFAULT_DEADLINE_SECONDS", 0.1, 3600),
        max_receive_bytes=r.integer("GRPC_MAX_RECEIVE_BYTES", 1024, 64 * 1024 * 1024),
        family_service_accounts=r.boolean("AUTH_FAMILY_SERVICE_ACCOUNTS"),
        unauthenticated_rate_per_second=r.number(
            "RATE_LIMIT_UNAUTHENTICATED_PER_SECOND", 0, 1_000_000
        ),
    )
