"""How every Kafka client of the service connects: brokers, TLS and SASL.

The consumer, its dead-letter tools, the producer of demo traffic and the
scheduler's notification publisher all build their aiokafka clients with
`client_options(settings.kafka)`, so a secured cluster is configured once
(KAFKA_SECURITY_PROTOCOL and friends) and works for every process.
"""

from __future__ import annotations

import ssl

from customer_core.config import KafkaSettings
from customer_core.errors import ConfigError


def client_options(kafka: KafkaSettings) -> dict[str, object]:
    """Keyword arguments for AIOKafkaConsumer, AIOKafkaProducer and AIOKafkaAdminClient."""
    if not kafka.brokers:
        raise ConfigError("KAFKA_BROKERS", "required (host:port, comma-separated)")
    options: dict[str, object] = {
        "bootstrap_servers": kafka.bootstrap,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol.endswith("SSL"):
        options["ssl_context"] = tls_context(kafka)
    if kafka.security_protocol.startswith("SASL_"):
        # aiokafka takes the SCRAM credentials under the same two names.
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = kafka.sasl_password
    return options


def tls_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """Verifies the brokers (against KAFKA_SSL_CA_FILE or the system CAs) and presents
    the client certificate when one is configured. A file that cannot be used is a
    ConfigError naming its variable."""
    try:
        context = ssl.create_default_context(cafile=kafka.ssl_ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            "KAFKA_SSL_CA_FILE", f"cannot load {kafka.ssl_ca_file!r}: {exc}"
        ) from None
    if kafka.ssl_cert_file:
        try:
            context.load_cert_chain(kafka.ssl_cert_file, kafka.ssl_key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                "KAFKA_SSL_CERT_FILE",
                f"cannot load {kafka.ssl_cert_file!r} with KAFKA_SSL_KEY_FILE "
                f"{kafka.ssl_key_file!r}: {exc}",
            ) from None
    return context
