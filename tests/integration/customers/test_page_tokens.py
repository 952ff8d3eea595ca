"""Page tokens are the service's own: a forged, tampered or malformed token is
INVALID_ARGUMENT naming page_token on every list, never INTERNAL and never obeyed."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable

import grpc
import pytest

from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.integration.customers.conftest import new_customer

Stub = customer_pb2_grpc.CustomerServiceStub


def forged(query: str, key: object) -> str:
    """A token as the service wrote them before they were signed: anyone could make one."""
    fingerprint = hashlib.sha256(query.encode()).hexdigest()[:12]
    text = json.dumps({"q": fingerprint, "k": key}, separators=(",", ":"), allow_nan=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# Sort keys of the right shape (a client skipping ahead at will) and of wrong ones.
KEYS = [
    ["2025-01-01T00:00:00+00:00", str(uuid.uuid4())],
    [1, 2],
    [float("inf"), str(uuid.uuid4())],
    [2**70, str(uuid.uuid4())],
    [2**70],
    ["x"],
    [None, None],
    [{"a": 1}, []],
    [],
]


async def lists(api: Stub) -> dict[str, tuple[str, Callable[[str], Awaitable[object]]]]:
    """Each list RPC: the query its tokens belong to, and a call with a given token."""
    family = await api.CreateFamily(pb.CreateFamilyRequest(family=pb.Family(display_name="R")))
    member = await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name)))
    cid = member.name.split("/")[1]
    fid = family.name.split("/")[1]
    return {
        "ListCustomers": (
            "customers?family=",
            lambda t: api.ListCustomers(pb.ListCustomersRequest(page_token=t)),
        ),
        "ListFamilyMembers": (
            f"customers?family={fid}",
            lambda t: api.ListFamilyMembers(
                pb.ListFamilyMembersRequest(family=family.name, page_token=t)
            ),
        ),
        "ListLoyaltyTransactions": (
            f"ledger:{cid}",
            lambda t: api.ListLoyaltyTransactions(
                pb.ListLoyaltyTransactionsRequest(customer=member.name, page_token=t)
            ),
        ),
        "ListFavorites": (
            f"favorites:{cid}",
            lambda t: api.ListFavorites(pb.ListFavoritesRequest(parent=member.name, page_token=t)),
        ),
        "ListRewards": ("rewards:", lambda t: api.ListRewards(pb.ListRewardsRequest(page_token=t))),
        "ListPendingApprovals": (
            f"approvals:{fid}",
            lambda t: api.ListPendingApprovals(
                pb.ListPendingApprovalsRequest(family=family.name, page_token=t)
            ),
        ),
    }


async def refused(call: Awaitable[object]) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    return caught.value.details() or ""


async def test_a_forged_or_malformed_token_is_invalid_argument_on_every_list(api: Stub) -> None:
    for rpc, (query, call) in (await lists(api)).items():
        for key in KEYS:
            details = await refused(call(forged(query, key)))
            assert details.startswith("page_token:"), (rpc, key, details)
        for junk in ["garbage!", "e30", "=" * 7, "a" * 5000, "\u0661\u0662"]:
            assert (await refused(call(junk))).startswith("page_token:"), (rpc, junk)


async def test_a_tampered_token_is_refused_and_an_issued_one_still_pages(api: Stub) -> None:
    family = await api.CreateFamily(pb.CreateFamilyRequest(family=pb.Family(display_name="R")))
    for _ in range(3):
        await api.CreateCustomer(pb.CreateCustomerRequest(customer=new_customer(family.name)))
    first = await api.ListFamilyMembers(
        pb.ListFamilyMembersRequest(family=family.name, page_size=1)
    )
    token = first.next_page_token
    assert token
    second = await api.ListFamilyMembers(
        pb.ListFamilyMembersRequest(family=family.name, page_size=1, page_token=token)
    )
    assert second.members[0].name != first.members[0].name
    for i in range(len(token)):
        flipped = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        details = await refused(
            api.ListFamilyMembers(
                pb.ListFamilyMembersRequest(family=family.name, page_size=1, page_token=flipped)
            )
        )
        assert details.startswith("page_token:"), (i, flipped)
