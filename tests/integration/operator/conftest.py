"""Operator fixtures: resource bodies as the API server would hand them to kopf."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from kopf._core.engines import posting

from customer_operator import main

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


class _Posted(list[posting.K8sEvent]):
    """Stands in for kopf's event queue, which only `kopf.run`'s poster task drains."""

    def put_nowait(self, event: posting.K8sEvent) -> None:
        self.append(event)

    def call_soon_threadsafe(self, fn: Callable[..., None], *args: Any) -> None:
        fn(*args)


@pytest.fixture(autouse=True)
def posted() -> Iterator[list[posting.K8sEvent]]:
    """The Events the handlers ask kopf to post, with the operator's own posting settings.

    kopf keeps its queue and settings in context variables the operator sets at
    start; the handlers called here directly need them too (kopf's own tests do
    the same).
    """
    settings = kopf.OperatorSettings()
    main.configure(settings)
    events = _Posted()
    tokens = [
        (posting.settings_var, posting.settings_var.set(settings)),
        (posting.event_queue_var, posting.event_queue_var.set(events)),  # type: ignore[arg-type]
        (posting.event_queue_loop_var, posting.event_queue_loop_var.set(events)),  # type: ignore[arg-type]
    ]
    yield events
    for var, token in reversed(tokens):
        var.reset(token)  # type: ignore[attr-defined]
