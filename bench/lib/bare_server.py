"""The bare grpc.aio baseline: health, reflection and the six hot-path RPCs answering
constants (the very responses the real api gave, so the messages are the same size).

    python bench/lib/bare_server.py PORT PAYLOADS.json     (bench/api.py starts it)

PAYLOADS maps each method name to the hex of one real response. It listens on
127.0.0.1 only, runs on uvloop as the api does, and stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import grpc
import uvloop
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from customer_api.reflection import add_reflection
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc

RESPONSES: dict[str, Any] = {
    "ValidateCustomer": pb.ValidateCustomerResponse,
    "GetOrderContext": pb.OrderContext,
    "GetCustomer": pb.Customer,
    "GetUsualOrder": pb.Favorite,
    "QuoteRedemption": pb.QuoteRedemptionResponse,
    "RedeemReward": pb.RedeemRewardResponse,
}


def servicer(payloads: dict[str, str]) -> customer_pb2_grpc.CustomerServiceServicer:
    """A servicer whose hot-path methods return their constant (nothing else is served)."""
    methods: dict[str, Any] = {}
    for name, cls in RESPONSES.items():
        answer = cls.FromString(bytes.fromhex(payloads[name]))

        async def method(self: Any, request: Any, context: Any, answer: Any = answer) -> Any:
            return answer

        methods[name] = method
    return type("Bare", (customer_pb2_grpc.CustomerServiceServicer,), methods)()  # type: ignore[no-any-return]


async def serve(port: int, payloads: dict[str, str]) -> None:
    server = grpc.aio.server()
    customer_pb2_grpc.add_CustomerServiceServicer_to_server(  # type: ignore[no-untyped-call]
        servicer(payloads), server
    )
    checks = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    service = pb.DESCRIPTOR.services_by_name["CustomerService"].full_name
    # Both reflection versions, as the api serves them: a client asking for v1
    # first spends the same on either server.
    add_reflection((service, health.SERVICE_NAME), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await checks.set("", health_pb2.HealthCheckResponse.SERVING)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(0)


if __name__ == "__main__":
    # The api's event loop (customer_api/main.py), so the ratio is the api's own work.
    uvloop.run(serve(int(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())))
