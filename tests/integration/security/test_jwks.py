"""Key sets that break: a JWKS served by a real local HTTP server (or a file)
turns into HTML, an empty set, a truncated body, ...; the api keeps serving
with the keys it last loaded, fetches at most once per interval (backing off),
and a token naming a key it does not have is UNAUTHENTICATED."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from customer_api.security import jwks
from customer_api.security.settings import SecuritySettings
from customer_core.errors import Unauthenticated
from customer_core.pb.customer.v1 import customer_pb2 as pb
from tests.integration.security.conftest import AUDIENCE, ISSUER, Family, Serve, Signer

# (body, declared length or None for the body's own): every way a JWKS broke.
BROKEN: dict[str, tuple[bytes, int | None]] = {
    "html": (b"<html><body>502 Bad Gateway</body></html>", None),
    "empty key set": (b'{"keys": []}', None),
    "truncated": (b'{"keys": [{"kty": "EC", "crv": "P-2', 400),
    "a list": (b"[]", None),
    "keys not objects": (b'{"keys": ["x", 1]}', None),
    "unusable key": (b'{"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}', None),
    "not utf-8": (b"\xff\xfe{", None),
}


@dataclass
class JwksServer:
    body: bytes
    length: int | None = None
    status: int = 200
    fetches: int = 0

    url: str = ""


@pytest.fixture
def jwks_server(signer: Signer) -> Iterator[JwksServer]:
    state = JwksServer(body=signer.jwks_file.read_bytes())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.fetches += 1
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(state.length or len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


class Clock:
    """The key set's monotonic clock, moved by the test instead of by sleeping."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(jwks, "_monotonic", fake)
    return fake


def _url_settings(base: SecuritySettings, url: str) -> SecuritySettings:
    assert base.jwt is not None
    return replace(base, jwt=replace(base.jwt, jwks_file=None, jwks_url=url))


def _rotated_token() -> str:
    """Signed by a key the JWKS never had, under a new key id (a rotation we missed)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "ops", "kind": "operator", "exp": now + 60}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "rotated-key"})


async def _settle() -> None:
    """Let a background refresh (a thread reading from the local server) finish."""
    for _ in range(200):
        await asyncio.sleep(0.01)
        pending = [t for t in asyncio.all_tasks() if "_fetch" in repr(t.get_coro())]
        if not pending:
            return


@pytest.mark.parametrize("broken", list(BROKEN))
async def test_a_broken_key_set_keeps_the_last_good_keys_and_fetches_once_per_interval(
    jwt_security: SecuritySettings, jwks_server: JwksServer, clock: Clock, broken: str
) -> None:
    assert jwt_security.jwt is not None
    keys = jwks.KeySet(_url_settings(jwt_security, jwks_server.url).jwt)  # type: ignore[arg-type]
    keys.load_now()
    good_kid = "test-key-1"
    assert jwks_server.fetches == 1

    jwks_server.body, jwks_server.length = BROKEN[broken]
    clock.advance(jwks._TTL_SECONDS + 1)  # the keys are due for their refresh
    for _ in range(20):
        assert (await keys.key_for(good_kid)).key_id == good_kid  # never waits, never fails
    await _settle()
    assert jwks_server.fetches == 2  # one refresh for twenty calls

    for _ in range(20):
        with pytest.raises(Unauthenticated):
            await keys.key_for("rotated-key")
    assert jwks_server.fetches == 2  # an unknown key id buys no fetch within the interval

    clock.advance(jwks._MIN_REFRESH_SECONDS + 1)  # past the interval, not past the backoff
    with pytest.raises(Unauthenticated):
        await keys.key_for("rotated-key")
    assert jwks_server.fetches == 2

    clock.advance(jwks._MIN_REFRESH_SECONDS * 2)  # past the doubled wait: one more try
    with pytest.raises(Unauthenticated):
        await keys.key_for("rotated-key")
    await _settle()
    assert jwks_server.fetches == 3
    assert (await keys.key_for(good_kid)).key_id == good_kid

    # Mended: the next allowed fetch takes the new keys, and the backoff is over.
    clock.advance(jwks._MAX_BACKOFF_SECONDS + 1)
    jwks_server.body, jwks_server.length = _jwks_with(good_kid, "rotated-key"), None
    with pytest.raises(Unauthenticated):
        await keys.key_for("never-seen")
    await _settle()
    assert jwks_server.fetches == 4
    assert (await keys.key_for("rotated-key")).key_id == "rotated-key"


def _jwks_with(*kids: str) -> bytes:
    out = []
    for kid in kids:
        key = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": kid, "alg": "ES256", "use": "sig"})
        out.append(jwk)
    return json.dumps({"keys": out}).encode()


async def test_an_error_status_or_a_dead_server_is_survived_too(
    jwt_security: SecuritySettings, jwks_server: JwksServer, clock: Clock
) -> None:
    keys = jwks.KeySet(_url_settings(jwt_security, jwks_server.url).jwt)  # type: ignore[arg-type]
    keys.load_now()
    jwks_server.status = 503
    clock.advance(jwks._TTL_SECONDS + 1)
    with pytest.raises(Unauthenticated):
        await keys.key_for("rotated-key")
    assert (await keys.key_for("test-key-1")).key_id == "test-key-1"
    assert jwks_server.fetches == 2


async def test_the_api_answers_unauthenticated_and_keeps_serving_when_the_url_breaks(
    serve: Serve,
    signer: Signer,
    jwt_security: SecuritySettings,
    jwks_server: JwksServer,
    clock: Clock,
    families: tuple[Family, Family],
) -> None:
    running = await serve(_url_settings(jwt_security, jwks_server.url))
    good = running.stub(signer.token("operator", "ops-1"))
    rotated = running.stub(_rotated_token())
    request = pb.GetFamilyRequest(name=families[0].name)
    assert (await good.GetFamily(request)).name == families[0].name

    for broken in BROKEN:
        jwks_server.body, jwks_server.length = BROKEN[broken]
        clock.advance(jwks._MAX_BACKOFF_SECONDS + 1)
        before = jwks_server.fetches
        for _ in range(10):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await rotated.GetFamily(request)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, broken
            assert (await good.GetFamily(request)).name == families[0].name, broken
        await _settle()
        assert jwks_server.fetches == before + 1, broken


async def test_a_key_file_that_breaks_keeps_the_last_good_keys(
    serve: Serve,
    signer: Signer,
    jwt_security: SecuritySettings,
    tmp_path: Any,
    families: tuple[Family, Family],
) -> None:
    assert jwt_security.jwt is not None
    path = tmp_path / "jwks.json"
    path.write_bytes(signer.jwks_file.read_bytes())
    running = await serve(replace(jwt_security, jwt=replace(jwt_security.jwt, jwks_file=path)))
    good = running.stub(signer.token("operator", "ops-1"))
    rotated = running.stub(_rotated_token())
    request = pb.GetFamilyRequest(name=families[0].name)
    for i, (body, _) in enumerate(BROKEN.values()):
        path.write_bytes(body)
        stamp = time.time() + i + 1  # a new mtime, whatever the file system's resolution
        os.utime(path, (stamp, stamp))
        assert (await good.GetFamily(request)).name == families[0].name
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await rotated.GetFamily(request)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
