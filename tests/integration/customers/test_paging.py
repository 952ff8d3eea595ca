"""Keyset paging of ListCustomers and ListFamilyMembers."""

from __future__ import annotations

import grpc
import pytest

from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.integration.customers.conftest import new_customer

Stub = customer_pb2_grpc.CustomerServiceStub


async def members_by_page(api: Stub, family: str, size: int) -> list[list[str]]:
    pages: list[list[str]] = []
    token = ""
    while True:
        reply = await api.ListFamilyMembers(
            pb.ListFamilyMembersRequest(family=family, page_size=size, page_token=token)
        )
        pages.append([m.username for m in reply.members])
        token = reply.next_page_token
        if not token:
            return pages


async def test_family_members_page_in_join_order_without_gaps(api: Stub, family: pb.Family) -> None:
    usernames = [f"member_{i}" for i in range(7)]
    for u in usernames:
        await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name, u)))
    pages = await members_by_page(api, family.name, 3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [u for p in pages for u in p] == usernames


async def test_a_member_added_between_pages_is_not_skipped_or_repeated(
    api: Stub, family: pb.Family
) -> None:
    for u in ("a_1", "a_2", "a_3"):
        await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name, u)))
    first = await api.ListFamilyMembers(
        pb.ListFamilyMembersRequest(family=family.name, page_size=2)
    )
    await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name, "a_4")))
    rest = await api.ListFamilyMembers(
        pb.ListFamilyMembersRequest(
            family=family.name, page_size=10, page_token=first.next_page_token
        )
    )
    assert [m.username for m in first.members] + [m.username for m in rest.members] == [
        "a_1",
        "a_2",
        "a_3",
        "a_4",
    ]


async def test_list_customers_filters_by_family_and_hides_deleted(
    api: Stub, family: pb.Family
) -> None:
    other = await api.CreateFamily(pb.CreateFamilyRequest(family=pb.Family(display_name="Chen")))
    mine = await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name)))
    gone = await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name)))
    theirs = await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(other.name)))
    await api.DeleteCustomer(pb.DeleteCustomerRequest(name=gone.name))
    everyone = await api.ListCustomers(pb.ListCustomersRequest())
    assert {c.name for c in everyone.customers} == {mine.name, theirs.name}
    only_other = await api.ListCustomers(pb.ListCustomersRequest(family=other.name))
    assert [c.name for c in only_other.customers] == [theirs.name]
    assert (await api.GetFamily(pb.GetFamilyRequest(name=family.name))).member_count == 1


async def test_a_token_from_another_list_is_refused(api: Stub, family: pb.Family) -> None:
    for _ in range(2):
        await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name)))
    first = await api.ListCustomers(pb.ListCustomersRequest(page_size=1))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.ListCustomers(
            pb.ListCustomersRequest(
                page_size=1, page_token=first.next_page_token, family=family.name
            )
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("page_token:")


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ListCustomersRequest(page_size=-1), "page_size"),
        (pb.ListCustomersRequest(page_token="garbage!"), "page_token"),
        (pb.ListCustomersRequest(family="families/nope"), "family"),
    ],
)
async def test_bad_list_requests_name_the_field(
    api: Stub, request_: pb.ListCustomersRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.ListCustomers(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith(f"{field}:")


async def test_members_of_an_unknown_family_is_not_found(api: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.ListFamilyMembers(
            pb.ListFamilyMembersRequest(family="families/00000000-0000-4000-8000-000000000000")
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
