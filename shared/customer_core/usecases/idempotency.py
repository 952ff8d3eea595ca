"""Idempotent calls with effects: the first response is stored with the effect.

How to use it (loyalty, favorites, import, ... reuse this):

    from customer_core.usecases import idempotency

    call = idempotency.Call.of(request.idempotency_key, "AdjustPoints", fingerprint)
    # `fingerprint`: bytes identifying the request, e.g. the servicer's
    # request.SerializeToString(deterministic=True). Call.of validates the key
    # (1..128 printable ASCII; "" means "not idempotent") and raises
    # InvalidArgument naming `idempotency_key`.

    async with ctx.pool.acquire() as conn, conn.transaction():
        stored = await idempotency.begin(conn, call)
        if stored is not None:
            return decode(stored)          # a retry: the first call's response
        result = ...                       # the effect, on this connection
        await idempotency.finish(conn, call, encode(result), Owner(customer_id=...))
    return result

or, for the common shape, `await idempotency.run(ctx.pool, call, effect, codec, owner)`
with `owner(result) -> Owner`.

Erasure: a stored response that holds anything of a customer (a profile, a
favorite, a name) MUST be stored with `Owner(customer_id=...)`, one that holds
a family's name with `Owner(family_id=...)`. Erasing the customer (or the last
live member of the family) then rewrites it to the redacted resource (methods
listed in `usecases.erasure`) or clears it; a replay of a cleared response
raises NotFound naming the owner. A response with nothing personal in it (an
empty one, ids and numbers only) needs no owner.

Semantics:
- `begin` takes a transaction-scoped lock on the key, so two concurrent calls
  with one key run one after the other: the second waits for the first to
  commit, then finds its stored response. One effect, two identical answers.
- The response is written by `finish` in the same transaction as the effect:
  either both are committed or neither is. A call that fails (raises) stores
  nothing, so it can be retried with the same key.
- The same key with a different method or fingerprint raises
  IdempotencyConflict (FAILED_PRECONDITION at the gRPC edge).
- Keys are global across methods and callers: clients should use UUIDs.
  Records are kept until `db.idempotency.delete_older_than` removes them
  (a retention job's business); after that, a key counts as new.
- With an empty key (`Call.of` returns None) `begin`/`finish` do nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import asyncpg

from customer_core.db import Conn
from customer_core.db import idempotency as db
from customer_core.domain import names
from customer_core.errors import IdempotencyConflict, InvalidArgument, NotFound

R = TypeVar("R")

KEY_MAX = 128


def check_key(key: str, field: str = "idempotency_key") -> str:
    """1..128 printable ASCII characters (space to tilde)."""
    if not 1 <= len(key) <= KEY_MAX:
        raise InvalidArgument(field, f"must be 1..{KEY_MAX} characters, got {len(key)}")
    if not all(" " <= ch <= "~" for ch in key):
        raise InvalidArgument(field, "must be printable ASCII")
    return key


@dataclass(frozen=True)
class Call:
    key: str
    method: str
    request_hash: str

    @classmethod
    def of(
        cls, key: str, method: str, fingerprint: bytes, field: str = "idempotency_key"
    ) -> Call | None:
        """The idempotent call, or None when the client sent no key."""
        if key == "":
            return None
        check_key(key, field)
        digest = hashlib.sha256(method.encode() + b"\0" + fingerprint).hexdigest()
        return cls(key=key, method=method, request_hash=digest)


@dataclass(frozen=True)
class Owner:
    """Whose personal data a stored response holds (see the module docstring)."""

    customer_id: uuid.UUID | None = None
    family_id: uuid.UUID | None = None


NO_OWNER = Owner()


async def begin(conn: Conn, call: Call | None) -> bytes | None:
    """Lock the key; the stored response of an earlier identical call, else None.

    Must run inside the transaction that performs the effect. NotFound when
    erasure cleared the stored response."""
    if call is None:
        return None
    await db.lock_key(conn, call.key)
    stored = await db.fetch_call(conn, call.key)
    if stored is None:
        return None
    if stored.method != call.method or stored.request_hash != call.request_hash:
        raise IdempotencyConflict(call.key)
    if stored.response is None:
        if stored.customer_id is not None:
            raise NotFound(names.customer_name(stored.customer_id))
        raise NotFound(names.family_name(stored.family_id or uuid.UUID(int=0)))
    return stored.response


async def finish(conn: Conn, call: Call | None, response: bytes, owner: Owner = NO_OWNER) -> None:
    """Record the response, in the effect's transaction."""
    if call is None:
        return
    await db.insert_call(
        conn,
        call.key,
        db.StoredCall(call.method, call.request_hash, response, owner.customer_id, owner.family_id),
    )


class Codec(Protocol[R]):
    """How a use case's result is stored as the response bytes and read back."""

    def encode(self, value: R) -> bytes: ...

    def decode(self, raw: bytes) -> R: ...


async def run(
    pool: asyncpg.Pool,
    call: Call | None,
    effect: Callable[[Conn], Awaitable[R]],
    codec: Codec[R],
    owner: Callable[[R], Owner] | None = None,
) -> tuple[R, bool]:
    """Run `effect` in one transaction, once per key; returns (result, replayed).

    `owner(result)`: whose personal data the stored response holds, if any."""
    async with pool.acquire() as conn, conn.transaction():
        stored = await begin(conn, call)
        if stored is not None:
            return codec.decode(stored), True
        result = await effect(conn)
        await finish(conn, call, codec.encode(result), owner(result) if owner else NO_OWNER)
    return result, False
