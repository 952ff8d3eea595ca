"""HealthCheck: per-dependency status and version."""

from __future__ import annotations

import asyncio
import time

from customer_api.servicers.base import RpcBase, RpcContext
from customer_core import __version__
from customer_core.pb.customer.v1 import customer_pb2 as pb

_CHECK_TIMEOUT = 2.0


class HealthRPCs(RpcBase):
    serving = True

    async def HealthCheck(
        self, request: pb.HealthCheckRequest, context: RpcContext
    ) -> pb.HealthCheckResponse:
        deps = await asyncio.gather(self._check_postgres(), self._check_valkey())
        healthy = self.serving and all(d.healthy for d in deps)
        status = pb.HealthCheckResponse.SERVING if healthy else pb.HealthCheckResponse.NOT_SERVING
        return pb.HealthCheckResponse(status=status, version=__version__, dependencies=deps)

    async def _check_postgres(self) -> pb.DependencyHealth:
        async def probe() -> None:
            async with self.ctx.pool.acquire() as conn:
                await conn.fetchval("SELECT 1")

        return await _timed("postgres", probe)

    async def _check_valkey(self) -> pb.DependencyHealth:
        async def probe() -> None:
            await self.ctx.valkey.ping()

        return await _timed("valkey", probe)


async def _timed(name: str, probe: object) -> pb.DependencyHealth:
    start = time.perf_counter()
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT):
            await probe()  # type: ignore[operator]
    except Exception as exc:
        detail = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        return pb.DependencyHealth(
            name=name, healthy=False, latency_ms=(time.perf_counter() - start) * 1000, detail=detail
        )
    return pb.DependencyHealth(
        name=name, healthy=True, latency_ms=(time.perf_counter() - start) * 1000
    )
