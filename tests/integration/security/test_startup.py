"""Fail closed at start-up: the real `customer-service api` process, as a deployer
starts it. No AUTH_MODE, or a key set that cannot be loaded, is exit 2 with one
line naming the variable; AUTH_MODE=none is accepted only when asked for, and
says so in the log and in /metrics."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from customer_launcher.devstack import free_port
from tests.integration.security.conftest import AUDIENCE, ISSUER

API = [sys.executable, "-m", "customer_launcher", "api"]


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        API, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


def _without_auth(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith(("AUTH_", "JWT_"))}


def test_an_api_without_auth_mode_exits_2_naming_it(env: dict[str, str]) -> None:
    for value in (None, ""):
        child = _without_auth(env) | ({} if value is None else {"AUTH_MODE": value})
        done = _run({**child, "GRPC_PORT": str(free_port())})
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "AUTH_MODE" in lines[0] and "Traceback" not in done.stderr


@pytest.fixture
def html_jwks() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>login required</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_key_set_that_cannot_be_loaded_at_start_exits_2_naming_it(
    env: dict[str, str], html_jwks: str, tmp_path: Path
) -> None:
    empty = tmp_path / "jwks.json"
    empty.write_text('{"keys": []}')
    jwt_env = {"AUTH_MODE": "jwt", "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE}
    for source, variable in (
        ((("JWT_JWKS_URL", html_jwks)), "JWT_JWKS_URL"),
        (("JWT_JWKS_FILE", str(empty)), "JWT_JWKS_FILE"),
    ):
        child = {**_without_auth(env), **jwt_env, source[0]: source[1]}
        done = _run({**child, "GRPC_PORT": str(free_port())})
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and variable in lines[0], done.stderr


def test_auth_mode_none_must_be_explicit_and_is_announced(env: dict[str, str]) -> None:
    metrics = free_port()
    child = {
        **_without_auth(env),
        "AUTH_MODE": "none",
        "GRPC_PORT": str(free_port()),
        "METRICS_PORT": str(metrics),
        "LOG_FORMAT": "text",
    }
    proc = subprocess.Popen(
        API, env=child, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        _scrape_until(metrics, proc, "customer_auth_disabled 1.0")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    assert "AUTH_MODE=none" in out.decode()


def _scrape_until(port: int, proc: subprocess.Popen[bytes], wanted: str) -> None:
    """Until /metrics shows `wanted` (the gauge is 0 until the server is built)."""
    for _ in range(600):
        if proc.poll() is not None:
            raise AssertionError(f"api exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                page: str = r.read().decode()
            if wanted in page:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"/metrics never showed {wanted!r}")
