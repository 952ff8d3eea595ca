"""An Order Service token for `bench/api.py --auth order-service`: the api as deployed
(AUTH_MODE=jwt) verifies it and rate-limits its caller on every call.

A fresh ES256 key per run, its JWKS in the run's folder (JWT_JWKS_FILE), and one
token with `kind: order-service`, valid for the run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

ISSUER = "https://auth.bench.local"
AUDIENCE = "customer-service"
KID = "bench-key-1"


def order_service_token(root: Path, seconds: int = 3600) -> tuple[dict[str, str], str]:
    """(the api's environment for jwt mode, a bearer token of the Order Service)."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": KID, "alg": "ES256", "use": "sig"})
    jwks = root / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "order-service",
        "kind": "order-service",
        "iat": now,
        "exp": now + seconds,
    }
    token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": KID})
    env = {
        "AUTH_MODE": "jwt",
        "JWT_JWKS_FILE": str(jwks),
        "JWT_ISSUER": ISSUER,
        "JWT_AUDIENCE": AUDIENCE,
    }
    return env, token
