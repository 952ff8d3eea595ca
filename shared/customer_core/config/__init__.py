"""Configuration from the environment, validated once at start-up.

Every process builds one `Settings` with `load_settings()`; a bad value raises
`ConfigError` naming the variable, which the CLI prints as one line before
exiting non-zero. Which variables exist and how each is read is
`config.variables`; services import both from here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from customer_core.config.variables import (
    VARIABLES,
    EnvReader,
    Variable,
    all_variables,
    register,
)
from customer_core.errors import ConfigError

__all__ = [
    "DEV_PAGE_TOKEN_KEY",
    "VARIABLES",
    "EnvReader",
    "KafkaSettings",
    "Settings",
    "Variable",
    "all_variables",
    "load_settings",
    "register",
]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("json", "text")
# Signs page tokens when PAGE_TOKEN_KEY is unset: fine for `dev` and tests, and
# public, so anyone could forge tokens for a service that runs with it.
DEV_PAGE_TOKEN_KEY = b"customer-service development page-token key"


@dataclass(frozen=True)
class DatabaseSettings:
    host: str | None
    port: int
    name: str
    user: str
    password: str = field(repr=False)
    pool_min: int
    pool_max: int

    def dsn(self, database: str | None = None) -> str:
        host = self.host or "127.0.0.1"
        return f"postgresql://{self.user}@{host}:{self.port}/{database or self.name}"


@dataclass(frozen=True)
class ValkeySettings:
    host: str | None
    port: int
    password: str = field(repr=False)

    def url(self, db: int = 0) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host or '127.0.0.1'}:{self.port}/{db}"


KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSettings:
    brokers: tuple[str, ...]
    idempotent_producer: bool
    group_id: str
    dlq_topic: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_ca_file: str = ""
    ssl_cert_file: str = ""
    ssl_key_file: str = ""

    @property
    def bootstrap(self) -> str:
        return ",".join(self.brokers)


@dataclass(frozen=True)
class LoyaltySettings:
    points_per_unit: int
    rounding: str
    gold_points: int
    reserve_points: int
    tier_window_days: int
    expiry_days: int
    hold_seconds: int


@dataclass(frozen=True)
class Settings:
    db: DatabaseSettings
    valkey: ValkeySettings
    kafka: KafkaSettings
    loyalty: LoyaltySettings
    grpc_port: int
    grpc_max_message_bytes: int
    grpc_grace_seconds: float
    metrics_port: int
    otlp_endpoint: str
    service_name: str
    log_level: str
    log_format: str
    cache_ttl_seconds: int
    cache_batch_window_ms: float
    local_cache_entries: int = 0
    local_cache_bytes: int = 0
    page_token_key: bytes = field(default=DEV_PAGE_TOKEN_KEY, repr=False)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every variable; raises ConfigError naming the first bad one."""
    r = EnvReader(os.environ if env is None else env)
    db = DatabaseSettings(
        host=r.optional("DB_HOST"),
        port=r.integer("DB_PORT", 1, 65535),
        name=r.text("DB_NAME"),
        user=r.text("DB_USER"),
        password=r.text("DB_PASSWORD"),
        pool_min=r.integer("DB_POOL_MIN", 0, 100),
        pool_max=r.integer("DB_POOL_MAX", 1, 200),
    )
    if db.pool_min > db.pool_max:
        raise ConfigError("DB_POOL_MIN", f"must not exceed DB_POOL_MAX ({db.pool_max})")
    gold = r.integer("TIER_GOLD_POINTS", 1, 10**9)
    reserve = r.integer("TIER_RESERVE_POINTS", 1, 10**9)
    if reserve <= gold:
        raise ConfigError("TIER_RESERVE_POINTS", f"must be above TIER_GOLD_POINTS ({gold})")
    return Settings(
        db=db,
        valkey=ValkeySettings(
            host=r.optional("VALKEY_HOST"),
            port=r.integer("VALKEY_PORT", 1, 65535),
            password=r.text("VALKEY_PASSWORD"),
        ),
        kafka=_kafka(r),
        loyalty=LoyaltySettings(
            points_per_unit=r.integer("POINTS_PER_CURRENCY_UNIT", 0, 10_000),
            rounding=r.choice("POINTS_ROUNDING", ("floor", "round", "ceil")),
            gold_points=gold,
            reserve_points=reserve,
            tier_window_days=r.integer("TIER_WINDOW_DAYS", 1, 3650),
            expiry_days=r.integer("POINTS_EXPIRY_DAYS", 1, 3650),
            hold_seconds=r.integer("REDEMPTION_HOLD_SECONDS", 1, 7 * 86400),
        ),
        grpc_port=r.integer("GRPC_PORT", 0, 65535),
        grpc_max_message_bytes=r.integer("GRPC_MAX_MESSAGE_BYTES", 1024, 64 * 1024 * 1024),
        grpc_grace_seconds=r.number("GRPC_GRACE_SECONDS", 0, 300),
        metrics_port=r.integer("METRICS_PORT", 0, 65535),
        otlp_endpoint=r.text("OTEL_EXPORTER_OTLP_ENDPOINT"),
        service_name=r.text("OTEL_SERVICE_NAME"),
        log_level=r.choice("LOG_LEVEL", LOG_LEVELS, upper=True),
        log_format=r.choice("LOG_FORMAT", LOG_FORMATS),
        cache_ttl_seconds=r.integer("CACHE_TTL_SECONDS", 1, 86400),
        cache_batch_window_ms=r.number("CACHE_BATCH_WINDOW_MS", 0, 100),
        local_cache_entries=r.integer("LOCAL_CACHE_ENTRIES", 0, 10_000_000),
        local_cache_bytes=r.integer("LOCAL_CACHE_BYTES", 1024, 1 << 40),
        page_token_key=_page_token_key(r),
    )


def _page_token_key(r: EnvReader) -> bytes:
    key = r.text("PAGE_TOKEN_KEY")
    if key and len(key) < 16:
        raise ConfigError("PAGE_TOKEN_KEY", f"must be at least 16 characters, got {len(key)}")
    return key.encode() if key else DEV_PAGE_TOKEN_KEY


def _kafka(r: EnvReader) -> KafkaSettings:
    kafka = KafkaSettings(
        brokers=r.brokers("KAFKA_BROKERS"),
        idempotent_producer=r.boolean("KAFKA_IDEMPOTENT_PRODUCER"),
        group_id=r.text("KAFKA_GROUP_ID"),
        dlq_topic=r.text("KAFKA_DLQ_TOPIC"),
        security_protocol=r.choice("KAFKA_SECURITY_PROTOCOL", KAFKA_PROTOCOLS, upper=True),
        sasl_mechanism=r.choice("KAFKA_SASL_MECHANISM", SASL_MECHANISMS, upper=True),
        sasl_username=r.text("KAFKA_SASL_USERNAME"),
        sasl_password=r.text("KAFKA_SASL_PASSWORD"),
        ssl_ca_file=r.text("KAFKA_SSL_CA_FILE"),
        ssl_cert_file=r.text("KAFKA_SSL_CERT_FILE"),
        ssl_key_file=r.text("KAFKA_SSL_KEY_FILE"),
    )
    protocol = kafka.security_protocol
    if protocol.startswith("SASL_"):
        for name, value in (
            ("KAFKA_SASL_USERNAME", kafka.sasl_username),
            ("KAFKA_SASL_PASSWORD", kafka.sasl_password),
        ):
            if not value:
                raise ConfigError(name, f"required when KAFKA_SECURITY_PROTOCOL is {protocol}")
    tls_files = (
        ("KAFKA_SSL_CA_FILE", kafka.ssl_ca_file),
        ("KAFKA_SSL_CERT_FILE", kafka.ssl_cert_file),
        ("KAFKA_SSL_KEY_FILE", kafka.ssl_key_file),
    )
    for name, value in tls_files:
        if value and not protocol.endswith("SSL"):
            # Set but never read would leave the operator believing TLS is on.
            raise ConfigError(name, f"only used with SSL or SASL_SSL, not {protocol}")
    if bool(kafka.ssl_cert_file) != bool(kafka.ssl_key_file):
        missing = "KAFKA_SSL_KEY_FILE" if kafka.ssl_cert_file else "KAFKA_SSL_CERT_FILE"
        raise ConfigError(missing, "required with the other half of the client certificate")
    return kafka
