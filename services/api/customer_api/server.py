"""Building, starting and gracefully stopping the gRPC server."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from customer_api.edge import Edge
from customer_api.reflection import add_reflection
from customer_api.security.settings import SecuritySettings
from customer_api.security.setup import server_security
from customer_api.servicer import CustomerServicer
from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2, customer_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = customer_pb2.DESCRIPTOR.services_by_name["CustomerService"].full_name


@dataclass
class ApiServer:
    server: grpc.aio.Server
    servicer: CustomerServicer
    health: HealthServicer
    port: int
    secure: bool = False

    async def start(self) -> None:
        await self.servicer.on_start()
        await self.server.start()
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float) -> None:
        """Health turns NOT_SERVING first, so load balancers drain us; then in-flight
        RPCs get `grace` seconds to finish before they are cancelled."""
        self.servicer.serving = False
        await self.health.enter_graceful_shutdown()
        await self.servicer.on_stop()
        await self.server.stop(grace)


# Request metadata gRPC reads, all entries together (HPACK sizes: name, value, 32).
MAX_METADATA_BYTES = 16 * 1024
# The most often a client may ping a connection (a ping more often is a strike; two
# and gRPC answers GOAWAY "too_many_pings").
MIN_PING_INTERVAL_MS = 10_000


def keepalive_options() -> list[tuple[str, int]]:
    """Keep idle connections alive through proxies (a ping every 60 s), and let a
    client do the same at most every MIN_PING_INTERVAL_MS: also while it has no
    call open, which is when keepalive matters (grpc-go's PermitWithoutStream,
    Envoy). Without `permit_without_calls` gRPC allows such a ping only every two
    hours, and cuts the idle connection of every client that keeps it alive."""
    return [
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", MIN_PING_INTERVAL_MS),
    ]


def build_server(
    ctx: Context, port: int, host: str = "[::]", security: SecuritySettings | None = None
) -> ApiServer:
    limit = ctx.settings.grpc_max_message_bytes
    # Security settings come from the environment unless given (AUTH_MODE is required).
    sec = server_security(ctx, security)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", min(limit, sec.settings.max_receive_bytes)),
            ("grpc.max_send_message_length", limit),
            ("grpc.so_reuseport", 0),
            # One limit, not gRPC's default soft 8 KiB and hard 16 KiB, between which
            # it refuses a share of calls at random: a token as long as the security
            # layer accepts (8 KiB) always reaches it, and what is longer than the
            # transport reads is refused every time (RESOURCE_EXHAUSTED).
            ("grpc.max_metadata_size", MAX_METADATA_BYTES),
            ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
            *keepalive_options(),
        ],
    )
    servicer = CustomerServicer(ctx)
    # Every handler is registered with the edge around it (edge.py).
    # Undecodable requests are INVALID_ARGUMENT (not UNKNOWN), answered by the
    # edge before the security layer (if any) looks into them.
    edge = Edge(guard_malformed=True, around=sec.wrappers).registrar(server)
    customer_pb2_grpc.add_CustomerServiceServicer_to_server(servicer, edge)  # type: ignore[arg-type]
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, edge)  # type: ignore[arg-type]
    add_reflection((SERVICE_NAME, health.SERVICE_NAME), edge)
    address = f"{host}:{port}"
    if sec.credentials is not None:
        bound = server.add_secure_port(address, sec.credentials)
    else:
        bound = server.add_insecure_port(address)
    return ApiServer(
        server=server,
        servicer=servicer,
        health=health_servicer,
        port=bound,
        secure=sec.credentials is not None,
    )
