"""Configuration: defaults from the original description, one clear line per bad value."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_core.config import DEV_PAGE_TOKEN_KEY, VARIABLES, load_settings
from customer_core.errors import ConfigError


def test_defaults_match_the_original_description() -> None:
    s = load_settings({})
    assert (s.db.port, s.db.name, s.db.user) == (5432, "customerdb", "customeruser")
    assert s.valkey.port == 6379
    assert s.grpc_port == 50052
    assert s.db.host is None and s.valkey.host is None and s.kafka.brokers == ()


def test_page_tokens_are_signed_with_the_key_set_or_a_development_one() -> None:
    assert load_settings({"PAGE_TOKEN_KEY": "k" * 16}).page_token_key == b"k" * 16
    assert load_settings({}).page_token_key == DEV_PAGE_TOKEN_KEY
    assert "k" * 16 not in repr(load_settings({"PAGE_TOKEN_KEY": "k" * 16}))


def test_values_are_read() -> None:
    s = load_settings(
        {"DB_HOST": "db", "DB_PORT": "6432", "KAFKA_BROKERS": "a:9092, b:9093", "GRPC_PORT": "1"}
    )
    assert s.db.host == "db" and s.db.port == 6432
    assert s.kafka.brokers == ("a:9092", "b:9093")
    assert s.grpc_port == 1


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("DB_PORT", "abc", "whole number"),
        ("DB_PORT", "70000", "from 1 to 65535"),
        ("GRPC_PORT", "-1", "from 0 to 65535"),
        ("LOG_LEVEL", "LOUD", "one of DEBUG"),
        ("LOG_FORMAT", "xml", "json, text"),
        ("KAFKA_BROKERS", "nohostport", "host:port"),
        ("KAFKA_BROKERS", "h:0", "host:port"),
        ("KAFKA_IDEMPOTENT_PRODUCER", "maybe", "true or false"),
        ("POINTS_ROUNDING", "up", "floor, round, ceil"),
        ("TIER_RESERVE_POINTS", "10", "above TIER_GOLD_POINTS"),
        ("DB_POOL_MIN", "50", "DB_POOL_MAX"),
        ("KAFKA_SECURITY_PROTOCOL", "TLS", "PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
        ("KAFKA_SASL_MECHANISM", "GSSAPI", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
        ("KAFKA_SSL_CA_FILE", "/etc/ca.pem", "only used with SSL or SASL_SSL, not PLAINTEXT"),
        ("PAGE_TOKEN_KEY", "short", "at least 16 characters"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: value})
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")
    assert says in str(caught.value)


@given(st.text(max_size=12))
def test_any_port_text_is_accepted_or_named(value: str) -> None:
    try:
        s = load_settings({"DB_PORT": value})
    except ConfigError as exc:
        assert exc.variable == "DB_PORT"
    else:
        assert 1 <= s.db.port <= 65535


def test_every_variable_is_documented_once() -> None:
    names = [v.name for v in VARIABLES]
    assert len(names) == len(set(names))
    assert all(v.meaning for v in VARIABLES)


@pytest.mark.parametrize(
    ("env", "variable", "says"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_USERNAME", "required when"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "sasl_plaintext", "KAFKA_SASL_USERNAME": "svc"},
            "KAFKA_SASL_PASSWORD",
            "required when KAFKA_SECURITY_PROTOCOL is SASL_PLAINTEXT",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERT_FILE": "/c.pem"},
            "KAFKA_SSL_KEY_FILE",
            "other half",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEY_FILE": "/k.pem"},
            "KAFKA_SSL_CERT_FILE",
            "other half",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD": "p",
                "KAFKA_SSL_CERT_FILE": "/c.pem",
            },
            "KAFKA_SSL_CERT_FILE",
            "not SASL_PLAINTEXT",
        ),
    ],
)
def test_kafka_security_mistakes_name_the_variable(
    env: dict[str, str], variable: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert caught.value.variable == variable
    assert says in str(caught.value)


def test_kafka_sasl_is_read_and_its_password_kept_out_of_reprs() -> None:
    s = load_settings(
        {
            "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "KAFKA_SASL_MECHANISM": "scram-sha-512",
            "KAFKA_SASL_USERNAME": "svc",
            "KAFKA_SASL_PASSWORD": "s3cret-pw",
        }
    )
    assert (s.kafka.security_protocol, s.kafka.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert s.kafka.sasl_username == "svc" and s.kafka.sasl_password == "s3cret-pw"
    assert "s3cret-pw" not in repr(s)
