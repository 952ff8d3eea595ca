"""Kafka clients' TLS and SASL options: a real TLS handshake with the context they get.

Tansu, the test broker, listens in plain text, so the broker side here is a
TLS server of our own on loopback: what is tested is that the context built
from KAFKA_SSL_* verifies the server against the configured CA and presents
the client certificate, and that unusable files are named.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from customer_core.config import load_settings
from customer_core.context.kafka import client_options
from customer_core.errors import ConfigError
from tests.support.pki import Authority


async def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> str | None:
    """The client certificate's subject as the server saw it (None: none was sent)."""
    seen: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cert = writer.get_extra_info("peercert")
        if not seen.done():
            seen.set_result(dict(x[0] for x in cert["subject"])["commonName"] if cert else None)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
        )
        writer.close()
        return await asyncio.wait_for(seen, 10)
    finally:
        server.close()
        await server.wait_closed()


def _server_context(ca: Authority, *, require_client: bool) -> ssl.SSLContext:
    issued = ca.issue("broker", "broker", server=True)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca.cert))
    ctx.load_cert_chain(issued.cert, issued.key)
    ctx.verify_mode = ssl.CERT_REQUIRED if require_client else ssl.CERT_NONE
    return ctx


async def test_mutual_tls_with_the_configured_ca_and_client_certificate(tmp_path: Path) -> None:
    ca = Authority(tmp_path)
    client = ca.issue("client", "customer-service", server=False)
    settings = load_settings(
        {
            "KAFKA_BROKERS": "localhost:9093",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
            "KAFKA_SASL_USERNAME": "svc",
            "KAFKA_SASL_PASSWORD": "pw",
            "KAFKA_SSL_CA_FILE": str(ca.cert),
            "KAFKA_SSL_CERT_FILE": str(client.cert),
            "KAFKA_SSL_KEY_FILE": str(client.key),
        }
    )
    options = client_options(settings.kafka)
    assert options["security_protocol"] == "SASL_SSL"
    assert (options["sasl_mechanism"], options["sasl_plain_username"]) == ("SCRAM-SHA-256", "svc")
    assert options["sasl_plain_password"] == "pw"
    client_ctx = options["ssl_context"]
    assert isinstance(client_ctx, ssl.SSLContext)
    server_ctx = _server_context(ca, require_client=True)
    assert await _handshake(server_ctx, client_ctx) == "customer-service"


async def test_a_broker_signed_by_another_ca_is_refused(tmp_path: Path) -> None:
    ours, theirs = Authority(tmp_path, "Our CA"), Authority(tmp_path, "Other CA")
    settings = load_settings(
        {
            "KAFKA_BROKERS": "localhost:9093",
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CA_FILE": str(ours.cert),
        }
    )
    client_ctx = client_options(settings.kafka)["ssl_context"]
    assert isinstance(client_ctx, ssl.SSLContext)
    with pytest.raises(ssl.SSLCertVerificationError):
        await _handshake(_server_context(theirs, require_client=False), client_ctx)


def test_plaintext_sends_no_tls_or_sasl_options() -> None:
    options = client_options(load_settings({"KAFKA_BROKERS": "k:9092"}).kafka)
    assert options == {"bootstrap_servers": "k:9092", "security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize("content", [None, b"not a certificate\n"])
def test_an_unusable_ca_file_is_named(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_bytes(content)
    settings = load_settings(
        {
            "KAFKA_BROKERS": "k:9093",
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CA_FILE": str(path),
        }
    )
    with pytest.raises(ConfigError) as caught:
        client_options(settings.kafka)
    assert caught.value.variable == "KAFKA_SSL_CA_FILE"
    assert str(path) in str(caught.value)


def test_a_key_that_does_not_match_the_certificate_is_named(tmp_path: Path) -> None:
    ca = Authority(tmp_path)
    one, two = ca.issue("one", "one", server=False), ca.issue("two", "two", server=False)
    settings = load_settings(
        {
            "KAFKA_BROKERS": "k:9093",
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CERT_FILE": str(one.cert),
            "KAFKA_SSL_KEY_FILE": str(two.key),
        }
    )
    with pytest.raises(ConfigError) as caught:
        client_options(settings.kafka)
    assert caught.value.variable == "KAFKA_SSL_CERT_FILE"
