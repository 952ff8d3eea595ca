"""The chart fails closed: AUTH_MODE defaults to jwt, and an install without the
issuer, audience or key set is an error naming the value to set."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from tests.integration.k8s.conftest import CHART, REQUIRED_AUTH, ROOT, load_values, render


def _render_raw(values: dict[str, Any] | None) -> None:
    with helm.Chart.load(CHART) as chart:
        chart.render(values, name="customer", namespace="default", is_install=True)


def test_the_default_auth_mode_is_jwt() -> None:
    values = load_values(CHART / "values.yaml")
    assert values["config"]["AUTH_MODE"] == "jwt"


@pytest.mark.parametrize("missing", ["JWT_ISSUER", "JWT_AUDIENCE", "JWT_JWKS_URL"])
def test_jwt_without_its_settings_fails_naming_the_value(missing: str) -> None:
    config = {k: v for k, v in REQUIRED_AUTH.items() if k != missing}
    with pytest.raises(Exception, match=f"config.{missing}"):
        _render_raw({"config": config})


def test_an_install_with_no_values_at_all_is_refused() -> None:
    with pytest.raises(Exception, match="AUTH_MODE"):
        _render_raw(None)


def test_the_required_values_or_an_explicit_none_install() -> None:
    _render_raw({"config": REQUIRED_AUTH})
    _render_raw({"config": {"AUTH_MODE": "none"}})
    dev = load_values(ROOT / "helm" / "customer-service" / "ci" / "dev-values.yaml")
    assert dev["config"]["AUTH_MODE"] == "none"  # what skaffold dev installs
    configmaps = [m for m in render(dev) if m.kind == "ConfigMap"]
    assert any(m.body["data"].get("AUTH_MODE") == "none" for m in configmaps)
