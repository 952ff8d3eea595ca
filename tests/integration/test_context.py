"""The per-process context closes even when a task never gives its connection back."""

from __future__ import annotations

import asyncio
import logging

import pytest

from customer_core import context as context_module
from customer_core.config import Settings
from customer_core.context import Context, connect_db


async def test_shutdown_terminates_a_connection_that_is_never_released(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(context_module, "POOL_CLOSE_GRACE_SECONDS", 0.5)
    ctx = await Context.create(settings)
    stuck = await ctx.pool.acquire()  # a task that hangs while holding it
    pid = stuck.get_server_pid()
    with caplog.at_level(logging.WARNING, logger="customer_core.context"):
        # Without the bound, pool.close() waits for `stuck` forever.
        await asyncio.wait_for(ctx.aclose(), 30)
    assert "still in use" in caplog.text
    # The server-side session is gone too, not just forgotten by the pool.
    probe = await connect_db(settings)
    try:
        for _ in range(100):
            sql = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1"
            if not await probe.fetchval(sql, pid):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"backend {pid} still connected after shutdown")
    finally:
        await probe.close()
