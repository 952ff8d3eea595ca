"""Operator fixtures: resource bodies as the API server would hand them to kopf."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[3] / "k8s" / "examples"


def resource(
    name: str = "double-mornings",
    spec: dict[str, Any] | None = None,
    *,
    namespace: str = "coffee",
    generation: int = 1,
    uid: str | None = None,
) -> dict[str, Any]:
    """A RewardCampaign body with the metadata the API server adds."""
    body = {
        "apiVersion": "rewards.coffee.example/v1alpha1",
        "kind": "RewardCampaign",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or str(uuid.uuid4()),
            "generation": generation,
        },
        "spec": copy.deepcopy(spec if spec is not None else SPEC),
    }
    return body


SPEC: dict[str, Any] = {
    "displayName": "Double points",
    "window": {
        "start": "2020-01-01T00:00",
        "end": "2099-01-01T00:00",
        "timeZone": "UTC",
    },
    "effect": {"multiplier": 2},
}


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return loaded


@pytest.fixture
def spec() -> dict[str, Any]:
    return copy.deepcopy(SPEC)
