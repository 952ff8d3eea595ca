"""Waiting for an api process a benchmark started to answer HealthCheck."""

from __future__ import annotations

import asyncio
import time

import grpc

from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc


async def wait_serving(port: int, within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = customer_pb2_grpc.CustomerServiceStub(channel)
        while True:
            try:
                await stub.HealthCheck(pb.HealthCheckRequest(), timeout=2)
                return
            except grpc.aio.AioRpcError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
