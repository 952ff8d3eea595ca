"""The environment variables the service reads, and reading them.

`VARIABLES` is the single list of core variables (the README table and the
Helm chart's env are checked against it); services add their own with
`register`. `EnvReader` turns one of them into a value or a ConfigError naming
it. The settings they make up are in `customer_core.config`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from customer_core.errors import ConfigError

T = TypeVar("T")


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
