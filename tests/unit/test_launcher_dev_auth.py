"""`customer-service dev` is the one place AUTH_MODE=none is chosen for you."""

from __future__ import annotations

import pytest

from customer_launcher.dev import process_env


def test_dev_gives_its_processes_auth_mode_none_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AUTH_MODE", raising=False)
    assert process_env({}, "api")["AUTH_MODE"] == "none"
    monkeypatch.setenv("AUTH_MODE", "jwt")
    assert process_env({}, "api")["AUTH_MODE"] == "jwt"
