"""Tokens and identities, without a server."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from customer_api.security.audit import find_id
from customer_api.security.interceptor import bearer_token
from customer_api.security.settings import JwtSettings
from customer_api.security.tokens import (
    Principal,
    StaticAuthenticator,
    build_authenticator,
    principal_from,
)
from customer_core.errors import ConfigError, Unauthenticated
from customer_core.pb.customer.v1 import customer_pb2 as pb

FAMILY = uuid.uuid4()


def test_an_app_principal_carries_its_family_and_is_its_own_caller() -> None:
    a = principal_from({"kind": "app", "sub": "app", "family_id": str(FAMILY)}, "t")
    b = principal_from({"kind": "app", "sub": "app", "family_id": str(uuid.uuid4())}, "t")
    assert a.family_id == FAMILY
    assert a.key != b.key


@pytest.mark.parametrize(
    "claims",
    [
        {"kind": "admin", "sub": "x"},
        {"kind": "operator"},
        {"kind": "operator", "sub": ""},
        {"kind": "app", "sub": "x"},
        {"kind": "app", "sub": "x", "family_id": "not-a-uuid"},
        {"kind": "operator", "sub": "x", "family_id": str(FAMILY)},
    ],
)
def test_claims_that_do_not_make_a_caller_are_refused(claims: dict[str, object]) -> None:
    with pytest.raises(Unauthenticated):
        principal_from(claims, "t")


def test_static_tokens_authenticate_by_digest(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(
        json.dumps(
            [
                {"token": "o" * 32, "kind": "operator", "subject": "ops"},
                {"token": "a" * 32, "kind": "app", "subject": "app", "family_id": str(FAMILY)},
            ]
        )
    )
    auth = StaticAuthenticator.from_file(path)
    assert asyncio.run(auth.authenticate("o" * 32)) == Principal("operator", "ops")
    assert asyncio.run(auth.authenticate("a" * 32)).family_id == FAMILY
    with pytest.raises(Unauthenticated):
        asyncio.run(auth.authenticate("o" * 31))


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps({"token": "x"}),
        json.dumps([{"token": "short", "kind": "operator", "subject": "s"}]),
        json.dumps([{"token": "x" * 20, "kind": "root", "subject": "s"}]),
    ],
)
def test_a_bad_static_tokens_file_is_a_config_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        StaticAuthenticator.from_file(path)
    assert caught.value.variable == "AUTH_STATIC_TOKENS_FILE"


def test_the_bearer_token_is_taken_from_one_authorization_entry() -> None:
    assert bearer_token([("authorization", "Bearer abc")]) == "abc"
    assert bearer_token([("authorization", "bearer abc")]) == "abc"
    for bad in (
        [],
        [("authorization", "Basic abc")],
        [("authorization", "Bearer ")],
        [("authorization", "Bearer a"), ("authorization", "Bearer b")],
    ):
        with pytest.raises(Unauthenticated):
            bearer_token(bad)


@given(st.lists(st.tuples(st.sampled_from(["authorization", "x"]), st.text(max_size=30))))
def test_any_metadata_gives_a_token_or_unauthenticated(metadata: list[tuple[str, str]]) -> None:
    try:
        token = bearer_token(metadata)
    except Unauthenticated:
        return
    assert token and token in dict(metadata)["authorization"]


def test_audit_ids_come_from_resource_names_only() -> None:
    cid, fid = uuid.uuid4(), uuid.uuid4()
    request = pb.UpdateCustomerRequest(
        customer=pb.Customer(name=f"customers/{cid}", family=f"families/{fid}", display_name="Ann")
    )
    assert find_id(request, "customers/") == cid
    assert find_id(request, "families/") == fid
    favorite = pb.RemoveFavoriteRequest(name=f"customers/{cid}/favorites/{uuid.uuid4()}")
    assert find_id(favorite, "customers/") == cid
    assert find_id(pb.AdjustPointsRequest(reason="customers/nope"), "customers/") is None


def test_a_token_whose_alg_is_not_its_keys_own_is_unauthenticated(tmp_path: Path) -> None:
    """An RS256 token naming an EC key's id: refused, not a TypeError (UNKNOWN)."""
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    jwk.update({"kid": "ec-1", "alg": "ES256"})
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    settings = JwtSettings(path, None, "iss", "aud", 0, ("ES256", "RS256"))
    auth = build_authenticator("jwt", None, settings)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {"iss": "iss", "aud": "aud", "sub": "s", "kind": "operator", "exp": 2**31}
    token = jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "ec-1"})
    with pytest.raises(Unauthenticated):
        asyncio.run(auth.authenticate(token))
