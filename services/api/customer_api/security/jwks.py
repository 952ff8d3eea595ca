"""The JWKS that JWT signatures are checked against, from a file or a URL.

A key set that breaks must not break the service. Whatever comes back (HTML,
`{"keys": []}`, a truncated body, a hang), the keys last loaded keep serving;
a fetch is tried at most once per `_MIN_REFRESH_SECONDS`, backing off while it
keeps failing; a token naming a key we do not have is UNAUTHENTICATED. Only the
first load, at start-up, is fatal (a ConfigError naming the variable), so a bad
key set stops a deploy rather than its first call.

A call with a known key never waits for a refresh: that runs in the
background. A call with an unknown key (the issuer may have just rotated)
waits for the one fetch in flight, at most `_FETCH_TIMEOUT_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import time
import urllib.request
from typing import Any

import jwt
from prometheus_client import Counter

from customer_api.security.settings import JwtSettings
from customer_core.errors import ConfigError, Unauthenticated

log = logging.getLogger(__name__)

JWKS_FETCHES = Counter(
    "customer_jwks_fetches", "Key set loads (file reads or URL fetches), by outcome.", ["outcome"]
)

_TTL_SECONDS = 600.0
_MIN_REFRESH_SECONDS = 30.0
_MAX_BACKOFF_SECONDS = 600.0
_FETCH_TIMEOUT_SECONDS = 5.0
_MAX_BYTES = 1024 * 1024
# Everything reading and parsing a key set can raise for a bad source or body.
_BROKEN = (OSError, ValueError, TimeoutError, http.client.HTTPException)


def _monotonic() -> float:
    # Read through this function so tests can move time without sleeping.
    return time.monotonic()


def parse_jwks(raw: bytes) -> dict[str | None, jwt.PyJWK]:
    """The usable keys by key id; ValueError saying why when there are none."""
    try:
        document: Any = json.loads(raw)
    except ValueError as exc:  # also undecodable bytes
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('not a JWKS: expected an object with a "keys" list')
    usable = [k for k in document["keys"] if isinstance(k, dict)]
    try:
        keyset = jwt.PyJWKSet.from_dict({"keys": usable})
    except Exception as exc:  # PyJWT raises several kinds for odd key material
        raise ValueError(f"no usable signing key ({exc})") from None
    keys = {key.key_id: key for key in keyset.keys}
    if not keys:
        raise ValueError("no usable signing key")
    return keys


class KeySet:
    def __init__(self, settings: JwtSettings) -> None:
        self._file = settings.jwks_file
        self._url = settings.jwks_url
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._loaded_at = 0.0
        self._next_try = 0.0
        self._failures = 0
        self._stamp: float | None = None
        self._refreshing: asyncio.Task[None] | None = None

    @property
    def variable(self) -> str:
        return "JWT_JWKS_FILE" if self._file is not None else "JWT_JWKS_URL"

    def load_now(self) -> None:
        """The first load, at start-up: a ConfigError naming the variable if it fails."""
        try:
            keys = parse_jwks(self._read_sync())
        except _BROKEN as exc:
            JWKS_FETCHES.labels("failed").inc()
            raise ConfigError(self.variable, f"cannot load the JWKS: {exc}") from None
        self._accept(keys)

    def _read_sync(self) -> bytes:
        if self._file is not None:
            self._stamp = self._file.stat().st_mtime
            return self._file.read_bytes()
        assert self._url is not None
        # urlopen raises HTTPError (an OSError) for a non-2xx answer.
        with urllib.request.urlopen(  # noqa: S310 (https, or http to localhost: settings)
            self._url, timeout=_FETCH_TIMEOUT_SECONDS
        ) as reply:
            body: bytes = reply.read(_MAX_BYTES + 1)
        if len(body) > _MAX_BYTES:
            raise ValueError(f"larger than {_MAX_BYTES} bytes")
        return body

    def _accept(self, keys: dict[str | None, jwt.PyJWK]) -> None:
        JWKS_FETCHES.labels("ok").inc()
        self._keys = keys
        self._failures = 0
        self._loaded_at = _monotonic()

    def _due(self, unknown_kid: bool) -> bool:
        if _monotonic() < self._next_try:
            return False
        if self._file is not None:
            try:
                return self._file.stat().st_mtime != self._stamp
            except OSError:
                return True  # gone: try (and fail, and back off) like a bad URL
        return unknown_kid or _monotonic() - self._loaded_at >= _TTL_SECONDS

    def _refresh(self) -> asyncio.Task[None]:
        if self._refreshing is None or self._refreshing.done():
            # Claimed before the fetch starts, so callers arriving meanwhile
            # wait for this one instead of starting their own.
            self._next_try = _monotonic() + _MIN_REFRESH_SECONDS
            self._refreshing = asyncio.create_task(self._fetch())
        return self._refreshing

    async def _fetch(self) -> None:
        try:
            raw = await asyncio.wait_for(
                asyncio.to_thread(self._read_sync), _FETCH_TIMEOUT_SECONDS * 2
            )
            keys = parse_jwks(raw)
        except _BROKEN as exc:
            JWKS_FETCHES.labels("failed").inc()
            self._failures += 1
            backoff = min(_MAX_BACKOFF_SECONDS, _MIN_REFRESH_SECONDS * 2**self._failures)
            self._next_try = _monotonic() + backoff
            log.error(
                "cannot refresh the JWKS; serving with the keys last loaded",
                extra={"error": str(exc) or type(exc).__name__, "retry_in_seconds": backoff},
            )
            return
        self._accept(keys)
        self._next_try = _monotonic() + _MIN_REFRESH_SECONDS

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        key = self._keys.get(kid)
        if key is None and kid is None and len(self._keys) == 1:
            key = next(iter(self._keys.values()))
        return key

    async def key_for(self, kid: str | None) -> jwt.PyJWK:
        key = self._lookup(kid)
        if self._due(key is None):
            refreshing = self._refresh()
            if key is None:
                with contextlib.suppress(TimeoutError):  # then: as if the fetch failed
                    await asyncio.wait_for(asyncio.shield(refreshing), _FETCH_TIMEOUT_SECONDS)
                key = self._lookup(kid)
        if key is None:
            raise Unauthenticated(f"no signing key {kid!r}")
        return key
