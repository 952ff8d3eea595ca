"""Who is calling: bearer tokens turned into a `Principal`.

Two authenticators share one interface. `JwtAuthenticator` verifies signed JWTs
against a JWKS (file or URL), issuer, audience, expiry and clock skew; the
`kind` claim says which caller kind it is and an app's `family_id` claim which
family it acts for. `StaticAuthenticator` reads a small JSON file of opaque
tokens for development. Neither says *why* a token failed to the caller: the
reason is only logged (never the token).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import jwt

from customer_api.security.jwks import KeySet
from customer_api.security.settings import JwtSettings
from customer_core.errors import ConfigError, Unauthenticated

log = logging.getLogger(__name__)

ORDER_SERVICE = "order-service"
APP = "app"
OPERATOR = "operator"
KINDS = (ORDER_SERVICE, APP, OPERATOR)

_MIN_STATIC_TOKEN_LENGTH = 16
_VERIFIED_TTL_SECONDS = 60.0
_VERIFIED_MAX = 10_000


@dataclass(frozen=True)
class Principal:
    """An authenticated caller; `family_id` is set for (and only for) app callers.

    An app token names a person: `sub` is the customer (`customers/{id}` or the
    bare id), and `customer_id` is set. An app token whose `sub` is not a
    customer is the family's service account (accepted only when
    AUTH_FAMILY_SERVICE_ACCOUNTS is on)."""

    kind: str
    subject: str
    family_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    # Wall-clock time (seconds) after which the token no longer holds; an open
    # stream ends then. None: it does not expire (static tokens).
    expires_at: float | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        """One caller for limits: an app backend acting for two families is two callers."""
        base = f"{self.kind}:{self.subject}"
        return f"{base}:{self.family_id}" if self.family_id else base


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Principal: ...

    def peek(self, token: str) -> Principal | None:
        """The principal if it is known without any costly check; else None."""
        ...


def principal_from(claims: dict[str, Any], where: str) -> Principal:
    """Build a Principal from token claims; Unauthenticated when they do not make one."""
    kind, subject = claims.get("kind"), claims.get("sub")
    if kind not in KINDS:
        raise Unauthenticated(f"{where}: kind must be one of {KINDS}, got {kind!r}")
    if not isinstance(subject, str) or not 0 < len(subject) <= 200:
        raise Unauthenticated(f"{where}: sub must be 1..200 characters")
    family = claims.get("family_id")
    if kind != APP:
        if family is not None:
            raise Unauthenticated(f"{where}: family_id is only for app callers")
        return Principal(kind=kind, subject=subject)
    try:
        family_id = uuid.UUID(str(family))
    except ValueError:
        raise Unauthenticated(f"{where}: an app caller needs a family_id UUID") from None
    return Principal(
        kind=kind, subject=subject, family_id=family_id, customer_id=_customer_in(subject)
    )


def _customer_in(subject: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(subject.removeprefix("customers/"))
    except ValueError:
        return None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class StaticAuthenticator:
    """Development tokens: `[{"token", "kind", "subject", "family_id"?}, ...]`.

    Tokens are kept as digests and looked up by digest, so the lookup time says
    nothing about how much of a guessed token was right."""

    def __init__(self, by_digest: dict[str, Principal]) -> None:
        self._by_digest = by_digest

    @classmethod
    def from_file(cls, path: Path) -> StaticAuthenticator:
        name = "AUTH_STATIC_TOKENS_FILE"
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(name, f"cannot read a JSON list from {path}: {exc}") from None
        if not isinstance(entries, list):
            raise ConfigError(name, "must hold a JSON list of token entries")
        by_digest: dict[str, Principal] = {}
        for i, entry in enumerate(entries):
            token = entry.get("token") if isinstance(entry, dict) else None
            if not isinstance(token, str) or len(token) < _MIN_STATIC_TOKEN_LENGTH:
                raise ConfigError(name, f"entry {i}: token must be at least 16 characters")
            claims = {"kind": entry.get("kind"), "sub": entry.get("subject")}
            if "family_id" in entry:
                claims["family_id"] = entry["family_id"]
            try:
                by_digest[_digest(token)] = principal_from(claims, f"entry {i}")
            except Unauthenticated as exc:
                raise ConfigError(name, str(exc)) from None
        return cls(by_digest)

    def peek(self, token: str) -> Principal | None:
        return self._by_digest.get(_digest(token))

    async def authenticate(self, token: str) -> Principal:
        found = self._by_digest.get(_digest(token))
        if found is None:
            raise Unauthenticated("unknown static token")
        return found


class JwtAuthenticator:
    """Verifies signatures once per token: a verified token is remembered (at most
    a minute, never past its expiry), as a caller sends the same token on every
    call and a signature check costs far more than the rest of the call's checks."""

    def __init__(self, settings: JwtSettings, keys: KeySet) -> None:
        self._settings = settings
        self._keys = keys
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def peek(self, token: str) -> Principal | None:
        known = self._verified.get(token)
        return known[0] if known is not None and known[1] > time.time() else None

    async def authenticate(self, token: str) -> Principal:
        known = self.peek(token)
        if known is not None:
            return known
        principal, expires = await self._verify(token)
        self._verified[token] = (principal, min(expires, time.time() + _VERIFIED_TTL_SECONDS))
        if len(self._verified) > _VERIFIED_MAX:
            self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        s = self._settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"malformed token: {exc}") from None
        algorithm = header.get("alg")
        if algorithm not in s.algorithms:
            raise Unauthenticated(f"algorithm {algorithm!r} is not accepted")
        key = await self._keys.key_for(header.get("kid"))
        try:
            # The PyJWK itself, not its raw key: PyJWT then refuses a token whose
            # `alg` is not the key's own (a raw key of the wrong type raised TypeError).
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"token rejected: {exc}") from None
        expires = float(claims["exp"])
        # Accepted until exp plus the leeway, so an open stream holds as long.
        principal = replace(principal_from(claims, "token"), expires_at=expires + s.leeway_seconds)
        return principal, expires


def build_authenticator(
    mode: str, static_file: Path | None, jwt_settings: JwtSettings | None
) -> Authenticator:
    """The authenticator for AUTH_MODE (not called for `none`); loads keys now."""
    if mode == "static":
        assert static_file is not None
        return StaticAuthenticator.from_file(static_file)
    assert jwt_settings is not None
    keys = KeySet(jwt_settings)
    keys.load_now()  # a ConfigError naming the variable: the api exits 2
    return JwtAuthenticator(jwt_settings, keys)
