"""Operator wiring: kopf keeps its bookkeeping in annotations; handlers and settings."""

from __future__ import annotations

import kopf
import pytest

from customer_core.errors import ConfigError
from customer_operator import handlers
from customer_operator.main import build_registry, configure
from customer_operator.settings import load


def test_kopf_bookkeeping_goes_to_annotations_never_status() -> None:
    settings = kopf.OperatorSettings()
    configure(settings)
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert isinstance(settings.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
    assert settings.persistence.finalizer == "rewards.coffee.example/end-campaign"
    assert not settings.peering.standalone
    assert settings.peering.name == "customer-service-operator" and settings.peering.mandatory
    assert settings.scanning.disabled  # the Role cannot list namespaces


def test_every_handler_is_registered_and_deletion_holds_a_finalizer() -> None:
    registry = build_registry(load({"OPERATOR_NAMESPACES": "coffee"}))
    changing = {(h.reason, h.requires_finalizer) for h in registry._changing.get_all_handlers()}
    assert ("create", None) in changing and ("update", None) in changing
    assert ("delete", True) in changing
    resumes = [h for h in registry._changing.get_all_handlers() if h.initial]
    assert [h.fn for h in resumes] == [handlers.reconcile]
    (timer,) = registry._spawning.get_all_handlers()
    assert timer.fn is handlers.refresh and timer.interval == 60.0


def test_namespace_settings() -> None:
    assert load({"OPERATOR_NAMESPACES": "coffee, tea"}).namespaces == ("coffee", "tea")
    assert load({"OPERATOR_NAMESPACES": "*"}).clusterwide
    with pytest.raises(ConfigError, match="OPERATOR_NAMESPACES"):
        load({"OPERATOR_NAMESPACES": "coffee,*"})
    with pytest.raises(ConfigError, match="OPERATOR_REFRESH_SECONDS"):
        load({"OPERATOR_REFRESH_SECONDS": "0"})
    with pytest.raises(ConfigError, match="OPERATOR_LIVENESS_PORT"):
        load({"OPERATOR_LIVENESS_PORT": "http"})
