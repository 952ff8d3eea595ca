"""Configuration from the environment, validated once at start-up.

Every process builds one `Settings` with `load_settings()`; a bad value raises
`ConfigError` naming the variable, which the CLI prints as one line before
exiting non-zero.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from customer_core.errors import ConfigError

T = TypeVar("T")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("json", "text")
# Signs page tokens when PAGE_TOKEN_KEY is unset: fine for `dev` and tests, and
# public, so anyone could forge tokens for a service that runs with it.
DEV_PAGE_TOKEN_KEY = b"customer-service development page-token key"


@dataclass(frozen=True)
class Variable:
    """One environment variable: its default and what it means (for the README table)."""

    name: str
    default: str | None
    meaning: str


# The single list of variables the code reads. The README table and the Helm
# chart's env are checked against it by tests.
VARIABLES: tuple[Variable, ...] = (
    Variable("DB_HOST", None, "PostgreSQL host; unset under `dev` starts an embedded server"),
    Variable("DB_PORT", "5432", "PostgreSQL port"),
    Variable("DB_NAME", "customerdb", "database name"),
    Variable("DB_USER", "customeruser", "database user"),
    Variable("DB_PASSWORD", "customerpass", "database password"),
    Variable("DB_POOL_MIN", "2", "minimum connections in each process's pool"),
    Variable("DB_POOL_MAX", "10", "maximum connections in each process's pool"),
    Variable("VALKEY_HOST", None, "Valkey host; unset under `dev` starts an embedded server"),
    Variable("VALKEY_PORT", "6379", "Valkey port"),
    Variable("VALKEY_PASSWORD", "", "Valkey password (empty: none)"),
    Variable(
        "KAFKA_BROKERS", None, "comma-separated host:port list; unset under `dev` starts Tansu"
    ),
    Variable(
        "KAFKA_IDEMPOTENT_PRODUCER", "true", "enable_idempotence on producers (off for Tansu)"
    ),
    Variable("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
    Variable(
        "KAFKA_SASL_MECHANISM", "PLAIN", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_* only)"
    ),
    Variable("KAFKA_SASL_USERNAME", "", "SASL user name (required with SASL_*)"),
    Variable("KAFKA_SASL_PASSWORD", "", "SASL password (required with SASL_*)"),
    Variable("KAFKA_SSL_CA_FILE", "", "CA bundle for the brokers (empty: system CAs; SSL only)"),
    Variable("KAFKA_SSL_CERT_FILE", "", "client certificate (PEM) for mutual TLS"),
    Variable("KAFKA_SSL_KEY_FILE", "", "the client certificate's private key (PEM)"),
    Variable("KAFKA_GROUP_ID", "customer-service", "the consumer group id"),
    Variable("KAFKA_DLQ_TOPIC", "customer.dlq", "dead-letter topic for bad events"),
    Variable("GRPC_PORT", "50052", "gRPC listen port"),
    Variable("GRPC_MAX_MESSAGE_BYTES", "4194304", "largest gRPC message accepted or sent"),
    Variable("GRPC_GRACE_SECONDS", "10", "how long in-flight RPCs may run after SIGTERM"),
    Variable("METRICS_PORT", "9464", "Prometheus /metrics port (0: pick a free one)"),
    Variable("OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP/gRPC endpoint for traces (empty: none)"),
    Variable("OTEL_SERVICE_NAME", "customer-service", "service.name on traces"),
    Variable("LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR"),
    Variable("LOG_FORMAT", "json", "json or text"),
    Variable("CACHE_TTL_SECONDS", "300", "lifetime of cached profiles and order contexts"),
    Variable(
        "CACHE_BATCH_WINDOW_MS",
        "1",
        "while a process's event loop is saturated, cache look-ups share one Valkey "
        "round trip per window (up to this much latency then; 0: a round trip per look-up)",
    ),
    Variable(
        "LOCAL_CACHE_ENTRIES",
        "10000",
        "cached responses each api replica keeps in memory, invalidated by Valkey "
        "client-side tracking (0: off, every cached read is a Valkey round trip)",
    ),
    Variable("LOCAL_CACHE_BYTES", "33554432", "bytes of responses the in-memory cache may hold"),
    Variable("POINTS_PER_CURRENCY_UNIT", "10", "points earned per whole currency unit spent"),
    Variable("POINTS_ROUNDING", "floor", "floor, round or ceil for fractional points"),
    Variable("TIER_GOLD_POINTS", "1500", "points in the tier window to reach Gold"),
    Variable("TIER_RESERVE_POINTS", "5000", "points in the tier window to reach Reserve"),
    Variable("TIER_WINDOW_DAYS", "365", "trailing window for tier points, in days"),
    Variable("POINTS_EXPIRY_DAYS", "180", "points expire after this many days without activity"),
    Variable("REDEMPTION_HOLD_SECONDS", "1800", "a reward hold not captured by then is released"),
    Variable(
        "PAGE_TOKEN_KEY",
        "",
        "secret key (16+ characters) that signs page tokens; empty: a fixed development "
        "key, so production must set it (the same on every api replica)",
    ),
)

_DEFAULTS: dict[str, str | None] = {v.name: v.default for v in VARIABLES}


def register(*variables: Variable) -> tuple[Variable, ...]:
    """Declare a service's own variables (in its settings module), so that
    EnvReader knows their defaults and the docs and chart tests see them."""
    for v in variables:
        if v.name in _DEFAULTS and v not in VARIABLES and v not in _EXTRA:
            raise ValueError(f"variable {v.name} is declared twice")
        _DEFAULTS[v.name] = v.default
        if v not in _EXTRA:
            _EXTRA.append(v)
    return variables


_EXTRA: list[Variable] = []


def all_variables() -> tuple[Variable, ...]:
    """Core variables, then every service variable registered so far, by name (so the
    order does not depend on which settings module happened to be imported first)."""
    return VARIABLES + tuple(sorted(_EXTRA, key=lambda v: v.name))


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


class EnvReader:
    """Reads variables from one environment mapping, raising ConfigError on a bad value.

    Services use it for their own variables (declared with `register`)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value == "":
            return _DEFAULTS[name]
        return value.strip()

    def text(self, name: str) -> str:
        return self.raw(name) or ""

    def optional(self, name: str) -> str | None:
        return self.raw(name) or None

    def integer(self, name: str, low: int, high: int) -> int:
        return self._parse(name, int, f"must be a whole number from {low} to {high}", low, high)

    def number(self, name: str, low: float, high: float) -> float:
        return self._parse(name, float, f"must be a number from {low} to {high}", low, high)

    def _parse(self, name: str, kind: Callable[[str], T], problem: str, low: T, high: T) -> T:
        raw = self.text(name)
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(name, f"{problem}, got {raw!r}") from None
        if not low <= value <= high:  # type: ignore[operator]
            raise ConfigError(name, f"{problem}, got {raw!r}")
        return value

    def boolean(self, name: str) -> bool:
        raw = self.text(name).lower()
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f"must be true or false, got {raw!r}")

    def choice(self, name: str, choices: tuple[str, ...], *, upper: bool = False) -> str:
        raw = self.text(name)
        value = raw.upper() if upper else raw.lower()
        if value not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)}, got {raw!r}")
        return value

    def brokers(self, name: str) -> tuple[str, ...]:
        raw = self.optional(name)
        if raw is None:
            return ()
        brokers = tuple(b.strip() for b in raw.split(",") if b.strip())
        for broker in brokers:
            host, sep, port = broker.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(name, f"each broker must be host:port, got {broker!r}")
        return brokers


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
