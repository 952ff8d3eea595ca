"""Without a token; and an app caller crossing into another family. The matrix
of every RPC by every caller and role is test_roles.py."""

from __future__ import annotations

import grpc
import pytest

from customer_api.security.scopes import SCOPES
from customer_api.security.tokens import APP
from customer_core.pb.customer.v1 import customer_pb2 as pb
from tests.integration.security.calls import METHODS, aimed_request, status_of
from tests.integration.security.conftest import Family, Serve, Signer

REFUSED = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


async def test_every_rpc_without_a_token_is_unauthenticated_but_health(
    serve: Serve, families: tuple[Family, Family]
) -> None:
    running = await serve()
    stub = running.stub()
    for method in METHODS:
        code = await status_of(stub, method, aimed_request(method, families[0]))
        expected = (
            grpc.StatusCode.OK if method == "HealthCheck" else grpc.StatusCode.UNAUTHENTICATED
        )
        assert code == expected, method


# ActivityFeed checks each Subscribe as the feed reads it: see test_streams.py.
@pytest.mark.parametrize(
    "method",
    [m for m, r in SCOPES.items() if APP in r.kinds and r.field and m != "ActivityFeed"],
)
async def test_an_app_cannot_reach_another_family(
    serve: Serve, signer: Signer, families: tuple[Family, Family], method: str
) -> None:
    own, other = families
    running = await serve()
    stub = running.stub(signer.token(APP, "app-1", own.id))
    code = await status_of(stub, method, aimed_request(method, other))
    assert code == grpc.StatusCode.PERMISSION_DENIED


async def test_an_app_cannot_tell_unknown_customers_from_other_families(
    serve: Serve, signer: Signer, families: tuple[Family, Family]
) -> None:
    own, other = families
    running = await serve()
    stub = running.stub(signer.token(APP, "app-1", own.id))
    for name in (other.member(0), "customers/00000000-0000-4000-8000-000000000000"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetCustomer(pb.GetCustomerRequest(name=name))
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListCustomers(pb.ListCustomersRequest())  # every family's customers
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_an_app_reads_its_own_family(
    serve: Serve, signer: Signer, families: tuple[Family, Family]
) -> None:
    own, _ = families
    running = await serve()
    stub = running.stub(signer.token(APP, "app-1", own.id))
    got = await stub.GetCustomer(pb.GetCustomerRequest(name=own.member(1)))
    assert got.name == own.member(1)
    members = await stub.ListFamilyMembers(pb.ListFamilyMembersRequest(family=own.name))
    assert {m.name for m in members.members} == {own.member(0), own.member(1)}


async def test_a_malformed_name_is_invalid_argument_naming_the_field(
    serve: Serve, signer: Signer, families: tuple[Family, Family]
) -> None:
    running = await serve()
    stub = running.stub(signer.token(APP, "app-1", families[0].id))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetLoyaltyAccount(pb.GetLoyaltyAccountRequest(customer="customers/nope"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("customer:")
