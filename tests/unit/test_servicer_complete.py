"""Every RPC of the contract is built: none falls through to the generated stub."""

from __future__ import annotations

from customer_api.rpc import SERVICE
from customer_api.servicer import CustomerServicer
from customer_core.pb.customer.v1.customer_pb2_grpc import CustomerServiceServicer


def test_every_rpc_is_built() -> None:
    unbuilt = [
        m.name
        for m in SERVICE.methods
        if getattr(CustomerServicer, m.name) is getattr(CustomerServiceServicer, m.name)
    ]
    assert unbuilt == []
