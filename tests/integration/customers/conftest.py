"""Fixtures for the families and customers tests: a family to put members in."""

from __future__ import annotations

import uuid

import pytest

from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc


def new_customer(family: str, username: str | None = None, **fields: object) -> pb.Customer:
    return pb.Customer(
        family=family,
        username=username or f"u_{uuid.uuid4().hex[:12]}",
        display_name=fields.pop("display_name", "Ana Rivera"),  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
async def family(api: customer_pb2_grpc.CustomerServiceStub) -> pb.Family:
    return await api.CreateFamily(pb.CreateFamilyRequest(family=pb.Family(display_name="Rivera")))
