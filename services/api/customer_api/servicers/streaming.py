"""HubRPCs: the base of the streaming servicers, holding the process's one hub."""

from __future__ import annotations

from customer_api.hub import Hub
from customer_api.servicers.base import RpcBase
from customer_api.stream_settings import StreamSettings, load_stream_settings
from customer_core.errors import Unavailable


class HubRPCs(RpcBase):
    """Base of the streaming mixins: one Hub per servicer, that is per process."""

    _hub: Hub | None = None
    stream_settings: StreamSettings | None = None  # None: read from the environment

    @property
    def hub(self) -> Hub:
        if self._hub is None:
            raise Unavailable("the server is not serving streams (starting or stopping)")
        return self._hub

    async def on_start(self) -> None:
        await super().on_start()
        if self._hub is None:
            self._hub = Hub(self.ctx, self.stream_settings or load_stream_settings())
            await self._hub.start()

    async def on_stop(self) -> None:
        hub, self._hub = self._hub, None
        if hub is not None:
            await hub.stop()
        await super().on_stop()
