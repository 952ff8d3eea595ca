"""Server credentials: TLS from a certificate and key, mutual TLS with a client CA.

The files are re-read when they change (checked at each new connection's
handshake), so a rotated certificate (cert-manager, a mesh) is picked up
without a restart.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import grpc

from customer_api.security.settings import TlsSettings
from customer_core.errors import ConfigError

log = logging.getLogger(__name__)


def _read(path: Path, variable: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(variable, f"cannot read {path}: {exc}") from None
    if b"-----BEGIN" not in data:
        raise ConfigError(variable, f"{path} is not a PEM file")
    return data


class _Reloader:
    """Gives gRPC a fresh certificate configuration when a file changed."""

    def __init__(self, tls: TlsSettings) -> None:
        self._tls = tls
        self._lock = threading.Lock()
        self._stamp = self._mtimes()

    def _mtimes(self) -> tuple[float, ...]:
        files = [self._tls.cert_file, self._tls.key_file]
        if self._tls.client_ca_file is not None:
            files.append(self._tls.client_ca_file)
        try:
            return tuple(f.stat().st_mtime for f in files)
        except OSError:
            return ()

    def config(self) -> grpc.ServerCertificateConfiguration:
        tls = self._tls
        key = _read(tls.key_file, "TLS_KEY_FILE")
        cert = _read(tls.cert_file, "TLS_CERT_FILE")
        ca = _read(tls.client_ca_file, "TLS_CLIENT_CA_FILE") if tls.client_ca_file else None
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        # Called by gRPC on its own threads at each handshake: None keeps the current one.
        with self._lock:
            stamp = self._mtimes()
            if not stamp or stamp == self._stamp:
                return None
            try:
                config = self.config()
            except ConfigError as exc:
                log.error("TLS files changed but cannot be loaded", extra={"error": str(exc)})
                return None
            self._stamp = stamp
            log.info("TLS certificate reloaded")
            return config


def server_credentials(tls: TlsSettings) -> grpc.ServerCredentials:
    """TLS credentials; with a client CA, clients must present a certificate it signed."""
    reloader = _Reloader(tls)
    return grpc.dynamic_ssl_server_credentials(
        reloader.config(),
        reloader.fetch,  # type: ignore[arg-type]  # None is allowed: "keep the current one"
        require_client_authentication=tls.client_ca_file is not None,
    )
