"""Security settings: no insecure default, one clear error per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_api.security.settings import load_security_settings
from customer_core.config import all_variables
from customer_core.errors import ConfigError


def test_auth_mode_has_no_default() -> None:
    for env in ({}, {"AUTH_MODE": ""}, {"AUTH_MODE": "  "}):
        with pytest.raises(ConfigError) as caught:
            load_security_settings(env)
        assert caught.value.variable == "AUTH_MODE"


def test_none_must_be_asked_for_and_keeps_the_other_defaults() -> None:
    s = load_security_settings({"AUTH_MODE": "none"})
    assert s.auth_mode == "none" and not s.auth_enabled
    assert s.tls is None and not s.family_service_accounts
    assert s.default_deadline_seconds == 10
    assert s.max_receive_bytes == 1024 * 1024


def test_the_variables_are_registered_for_the_docs() -> None:
    names = {v.name for v in all_variables()}
    assert {"AUTH_MODE", "TLS_CERT_FILE", "JWT_JWKS_FILE", "RATE_LIMIT_PER_SECOND"} <= names


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    out = {}
    for name in ("cert", "key", "ca", "jwks", "tokens"):
        path = tmp_path / name
        path.write_text("x")
        out[name] = str(path)
    return out


def test_jwt_mode_reads_its_settings(files: dict[str, str]) -> None:
    s = load_security_settings(
        {
            "AUTH_MODE": "jwt",
            "JWT_JWKS_FILE": files["jwks"],
            "JWT_ISSUER": "https://issuer",
            "JWT_AUDIENCE": "customer-service",
            "JWT_ALGORITHMS": "ES256, RS256",
            "TLS_CERT_FILE": files["cert"],
            "TLS_KEY_FILE": files["key"],
            "TLS_CLIENT_CA_FILE": files["ca"],
        }
    )
    assert s.jwt is not None and s.jwt.algorithms == ("ES256", "RS256")
    assert s.tls is not None and s.tls.client_ca_file is not None


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"AUTH_MODE": "open"}, "AUTH_MODE"),
        ({"AUTH_FAMILY_SERVICE_ACCOUNTS": "maybe"}, "AUTH_FAMILY_SERVICE_ACCOUNTS"),
        ({"AUTH_MODE": "static"}, "AUTH_STATIC_TOKENS_FILE"),
        ({"AUTH_MODE": "jwt"}, "JWT_JWKS_FILE"),
        ({"AUTH_MODE": "jwt", "JWT_JWKS_URL": "http://idp.example/jwks"}, "JWT_JWKS_URL"),
        ({"AUTH_MODE": "jwt", "JWT_JWKS_URL": "https://idp.example/jwks"}, "JWT_ISSUER"),
        (
            {"AUTH_MODE": "jwt", "JWT_JWKS_URL": "https://idp/jwks", "JWT_ISSUER": "i"},
            "JWT_AUDIENCE",
        ),
        (
            {
                "AUTH_MODE": "jwt",
                "JWT_JWKS_URL": "https://i/j",
                "JWT_ISSUER": "i",
                "JWT_AUDIENCE": "a",
                "JWT_ALGORITHMS": "HS256",
            },
            "JWT_ALGORITHMS",
        ),
        ({"TLS_CERT_FILE": "/no/such/file"}, "TLS_CERT_FILE"),
        ({"RATE_LIMIT_PER_SECOND": "-1"}, "RATE_LIMIT_PER_SECOND"),
        ({"RATE_LIMIT_BURST": "0"}, "RATE_LIMIT_BURST"),
        ({"MAX_STREAMS_PER_CALLER": "lots"}, "MAX_STREAMS_PER_CALLER"),
        ({"DEFAULT_DEADLINE_SECONDS": "0"}, "DEFAULT_DEADLINE_SECONDS"),
        ({"GRPC_MAX_RECEIVE_BYTES": "10"}, "GRPC_MAX_RECEIVE_BYTES"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_security_settings({"AUTH_MODE": "none", **env})
    assert caught.value.variable == variable


def test_tls_needs_both_halves_and_mtls_needs_tls(files: dict[str, str]) -> None:
    none = {"AUTH_MODE": "none"}
    with pytest.raises(ConfigError, match="TLS_KEY_FILE"):
        load_security_settings({**none, "TLS_CERT_FILE": files["cert"]})
    with pytest.raises(ConfigError, match="TLS_CERT_FILE"):
        load_security_settings({**none, "TLS_KEY_FILE": files["key"]})
    with pytest.raises(ConfigError, match="TLS_CLIENT_CA_FILE"):
        load_security_settings({**none, "TLS_CLIENT_CA_FILE": files["ca"]})


@given(st.text(max_size=20))
def test_any_auth_mode_is_accepted_or_named(mode: str) -> None:
    try:
        s = load_security_settings({"AUTH_MODE": mode})
    except ConfigError as exc:
        assert exc.variable in ("AUTH_MODE", "AUTH_STATIC_TOKENS_FILE", "JWT_JWKS_FILE")
    else:
        assert s.auth_mode == "none"
