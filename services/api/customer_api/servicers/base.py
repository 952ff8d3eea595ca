"""What every servicer mixin shares, and the answer for RPCs not built yet."""

from __future__ import annotations

from typing import Any

import grpc

from customer_api.rpc import SERVICE, RpcContext
from customer_core.context import Context

__all__ = ["SERVICE", "RpcBase", "RpcContext", "Unbuilt"]


class RpcBase:
    """Holds the process context; mixins override on_start/on_stop and call super()."""

    ctx: Context

    async def on_start(self) -> None:
        """Start background work (subscriptions, hubs) once the server starts."""

    async def on_stop(self) -> None:
        """Stop it; called once when the server shuts down."""


def _unbuilt(name: str, server_streaming: bool) -> Any:
    message = f"{name} is not built yet"
    if server_streaming:

        async def stream_stub(self: Any, request: Any, context: RpcContext) -> Any:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, message)
            yield  # makes this an async generator, as the stream handlers expect

        return stream_stub

    async def unary_stub(self: Any, request: Any, context: RpcContext) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, message)

    return unary_stub


class Unbuilt(RpcBase):
    """Every RPC of the contract answers UNIMPLEMENTED, naming itself, until a mixin
    earlier in the MRO defines it."""


for _method in SERVICE.methods:
    setattr(Unbuilt, _method.name, _unbuilt(_method.name, _method.server_streaming))
