"""Security fixtures: keys and tokens minted here, certificates made here, servers
built with explicit security settings, and two families to cross."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from customer_api.security.settings import JwtSettings, SecuritySettings
from customer_api.server import ApiServer, build_server
from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2_grpc

ISSUER = "https://auth.test.local"
AUDIENCE = "customer-service"
KID = "test-key-1"


@dataclass
class Signer:
    key: ec.EllipticCurvePrivateKey
    jwks_file: Path

    def token(
        self, kind: str, sub: str = "caller", family: uuid.UUID | None = None, **claims: Any
    ) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "kind": kind,
            "iat": now,
            "exp": now + 300,
        }
        if family is not None:
            body["family_id"] = str(family)
        body.update(claims)
        return jwt.encode(body, self.key, algorithm="ES256", headers={"kid": KID})


@pytest.fixture(scope="session")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Signer:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": KID, "alg": "ES256", "use": "sig"})
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return Signer(key=key, jwks_file=path)


@pytest.fixture(scope="session")
def jwt_security(signer: Signer) -> SecuritySettings:
    return SecuritySettings(
        tls=None,
        auth_mode="jwt",
        jwt=JwtSettings(
            jwks_file=signer.jwks_file,
            jwks_url=None,
            issuer=ISSUER,
            audience=AUDIENCE,
            leeway_seconds=5,
            algorithms=("ES256",),
        ),
        # The tests written for family-level app tokens keep them, as the
        # family's service account; member tokens have test_roles.py.
        family_service_accounts=True,
        # Generous: limits get their own tests.
        rate_per_second=100_000,
        rate_burst=100_000,
        order_service_rate_per_second=100_000,
        unauthenticated_rate_per_second=100_000,
    )


@dataclass
class Running:
    server: ApiServer
    channels: list[grpc.aio.Channel]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def stub(self, token: str | None = None) -> Stub:
        channel = grpc.aio.insecure_channel(self.target)
        self.channels.append(channel)
        return Stub(customer_pb2_grpc.CustomerServiceStub(channel), token)


class Stub:
    """A CustomerService stub that sends a bearer token with every call."""

    def __init__(self, raw: customer_pb2_grpc.CustomerServiceStub, token: str | None) -> None:
        self.raw = raw
        self.metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.raw, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("metadata", self.metadata)
            kwargs.setdefault("timeout", 30)
            return method(*args, **kwargs)

        return call


Serve = Callable[..., Awaitable[Running]]


@pytest.fixture
async def serve(ctx: Context, jwt_security: SecuritySettings) -> AsyncIterator[Serve]:
    """Start a server with the JWT settings (or others given); stopped after the test."""
    started: list[Running] = []

    async def start(
        security: SecuritySettings | None = None, context: Context | None = None
    ) -> Running:
        server = build_server(
            context or ctx, 0, host="127.0.0.1", security=security or jwt_security
        )
        await server.start()
        running = Running(server, [])
        started.append(running)
        return running

    yield start
    for running in started:
        for channel in running.channels:
            await channel.close()
        await running.server.stop(0)


@dataclass(frozen=True)
class Family:
    id: uuid.UUID
    members: tuple[uuid.UUID, ...]

    @property
    def name(self) -> str:
        return f"families/{self.id}"

    def member(self, i: int = 0) -> str:
        return f"customers/{self.members[i]}"


# A household for member-level callers: make_family(ctx, label, roles=HOUSEHOLD).
HOUSEHOLD = ("owner", "adult", "child")
OWNER_I, ADULT_I, CHILD_I = 0, 1, 2


async def make_family(
    ctx: Context, label: str, members: int = 2, roles: tuple[str, ...] = ()
) -> Family:
    """A family of `members` adults, or of one member per role in `roles`."""
    family_id = uuid.uuid4()
    roles = roles or ("adult",) * members
    ids = tuple(uuid.uuid4() for _ in roles)
    async with ctx.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO families (id, display_name) VALUES ($1, $2)", family_id, label
        )
        for i, cid in enumerate(ids):
            await conn.execute(
                "INSERT INTO customers (id, family_id, username, display_name, role)"
                " VALUES ($1, $2, $3, $4, $5)",
                cid,
                family_id,
                f"{label.lower()}{i}_{cid.hex[:6]}",
                f"{label} {i}",
                roles[i],
            )
            await conn.execute(
                "INSERT INTO loyalty_accounts (id, customer_id) VALUES ($1, $2)", uuid.uuid4(), cid
            )
    return Family(family_id, ids)


@pytest.fixture
async def families(ctx: Context) -> tuple[Family, Family]:
    return await make_family(ctx, "Rivera"), await make_family(ctx, "Chen")


def with_limits(settings: SecuritySettings, **changes: Any) -> SecuritySettings:
    return replace(settings, **changes)
