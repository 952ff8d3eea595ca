"""What every servicer mixin shares."""

from __future__ import annotations

from customer_api.rpc import SERVICE, RpcContext
from customer_core.context import Context

__all__ = ["SERVICE", "RpcBase", "RpcContext"]


class RpcBase:
    """Holds the process context; mixins override on_start/on_stop and call super()."""

    ctx: Context

    async def on_start(self) -> None:
        """Start background work (subscriptions, hubs) once the server starts."""

    async def on_stop(self) -> None:
        """Stop it; called once when the server shuts down."""
