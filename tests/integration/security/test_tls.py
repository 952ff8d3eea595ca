"""TLS when a certificate is configured; mutual TLS when a client CA is too."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from customer_api.security.settings import SecuritySettings, TlsSettings
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.integration.security.conftest import Serve
from tests.support.pki import Authority, Pair


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Authority, Pair, Pair, Authority]:
    folder = tmp_path_factory.mktemp("pki")
    ca = Authority(folder)
    server = ca.issue("server", "customer-service", server=True)
    client = ca.issue("client", "order-service", server=False)
    stranger = Authority(folder, "Stranger CA")
    return ca, server, client, stranger


def _tls(pki: tuple[Authority, Pair, Pair, Authority], mutual: bool) -> SecuritySettings:
    ca, server, _, _ = pki
    return SecuritySettings(
        tls=TlsSettings(server.cert, server.key, ca.cert if mutual else None),
        auth_mode="none",
    )


async def _health(channel: grpc.aio.Channel) -> pb.HealthCheckResponse:
    stub = customer_pb2_grpc.CustomerServiceStub(channel)
    return await stub.HealthCheck(pb.HealthCheckRequest(), timeout=20)


async def test_tls_serves_clients_that_trust_the_ca(
    serve: Serve, pki: tuple[Authority, Pair, Pair, Authority]
) -> None:
    running = await serve(_tls(pki, mutual=False))
    assert running.server.secure
    credentials = grpc.ssl_channel_credentials(root_certificates=pki[0].pem)
    async with grpc.aio.secure_channel(f"localhost:{running.server.port}", credentials) as channel:
        assert (await _health(channel)).status == pb.HealthCheckResponse.SERVING


async def test_tls_refuses_plaintext_and_untrusting_clients(
    serve: Serve, pki: tuple[Authority, Pair, Pair, Authority]
) -> None:
    running = await serve(_tls(pki, mutual=False))
    target = f"localhost:{running.server.port}"
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _health(channel)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    credentials = grpc.ssl_channel_credentials(root_certificates=pki[3].pem)
    async with grpc.aio.secure_channel(target, credentials) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _health(channel)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mtls_requires_a_client_certificate_from_the_ca(
    serve: Serve, pki: tuple[Authority, Pair, Pair, Authority]
) -> None:
    ca, _, client, stranger = pki
    running = await serve(_tls(pki, mutual=True))
    target = f"localhost:{running.server.port}"
    with_cert = grpc.ssl_channel_credentials(ca.pem, *client.pem())
    async with grpc.aio.secure_channel(target, with_cert) as channel:
        assert (await _health(channel)).status == pb.HealthCheckResponse.SERVING
    without = grpc.ssl_channel_credentials(ca.pem)
    async with grpc.aio.secure_channel(target, without) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _health(channel)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    # A certificate from another CA is not enough.
    forged = stranger.issue("forged", "order-service", server=False)
    wrong = grpc.ssl_channel_credentials(ca.pem, *forged.pem())
    async with grpc.aio.secure_channel(target, wrong) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _health(channel)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_rotated_certificate_is_served_without_a_restart(
    serve: Serve, pki: tuple[Authority, Pair, Pair, Authority], tmp_path: Path
) -> None:
    ca, server, _, stranger = pki
    # The server starts with a certificate from the stranger CA, in files we then replace.
    old = stranger.issue("rotating", "customer-service", server=True)
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(old.cert.read_bytes())
    key.write_bytes(old.key.read_bytes())
    running = await serve(SecuritySettings(tls=TlsSettings(cert, key, None), auth_mode="none"))
    target = f"localhost:{running.server.port}"
    trusting_ca = grpc.ssl_channel_credentials(ca.pem)
    async with grpc.aio.secure_channel(target, trusting_ca) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await _health(channel)
    new_key, new_cert = server.pem()
    key.write_bytes(new_key)
    cert.write_bytes(new_cert)
    async with grpc.aio.secure_channel(target, trusting_ca) as channel:
        assert (await _health(channel)).status == pb.HealthCheckResponse.SERVING


async def test_tls_and_jwt_together(
    serve: Serve,
    pki: tuple[Authority, Pair, Pair, Authority],
    jwt_security: SecuritySettings,
    signer: object,
) -> None:
    running = await serve(replace(jwt_security, tls=_tls(pki, mutual=True).tls))
    ca, _, client, _ = pki
    credentials = grpc.ssl_channel_credentials(ca.pem, *client.pem())
    async with grpc.aio.secure_channel(f"localhost:{running.server.port}", credentials) as channel:
        stub = customer_pb2_grpc.CustomerServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListRewards(pb.ListRewardsRequest(), timeout=20)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        token = signer.token("operator")  # type: ignore[attr-defined]
        await stub.ListRewards(
            pb.ListRewardsRequest(), timeout=20, metadata=(("authorization", f"Bearer {token}"),)
        )
