"""`customer-service operator`: run kopf over RewardCampaign resources.

Kopf's peering keeps a second replica (a rollout's overlap, a developer's run
against the cluster) from applying a change twice: every replica writes a
keep-alive with a random priority into the chart's KopfPeering object, and only
the highest live one handles RewardCampaigns; the others pause until it is gone.
The database schema is checked before kopf starts, so an out-of-date schema
stops the process with a clear line rather than a crash loop of failed handlers.
Kopf's own bookkeeping (progress and the last-handled spec) lives in
annotations, never in `status`, whose schema declares only our fields.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
from typing import Any

import kopf

from customer_core import telemetry
from customer_core.context import Context
from customer_core.usecases import schema
from customer_operator import handlers
from customer_operator.settings import OperatorSettings, load

log = logging.getLogger("customer_operator")

# The chart's KopfPeering (ClusterKopfPeering when cluster-wide) object.
PEERING = "customer-service-operator"


def configure(kopf_settings: kopf.OperatorSettings) -> None:
    persistence = kopf_settings.persistence
    persistence.finalizer = handlers.FINALIZER
    persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=handlers.GROUP)
    persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=handlers.GROUP, key="last-handled-spec"
    )
    kopf_settings.peering.standalone = False
    kopf_settings.peering.name = PEERING
    # Without the peering object the replica waits rather than working alone.
    kopf_settings.peering.mandatory = True
    # The Role names its namespaces; without scanning kopf neither lists
    # namespaces (forbidden outside cluster-wide mode: a minute of retries before
    # it falls back) nor needs more than the CRD list it gets at startup.
    kopf_settings.scanning.disabled = True
    # Events explain phases to `kubectl describe`; debug lines would flood them.
    kopf_settings.posting.level = logging.INFO


def build_registry(settings: OperatorSettings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, settings.refresh_seconds)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # A registry of our own has no default logins: in a pod the service
        # account, elsewhere (a developer against a test cluster) the kubeconfig.
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        configure(settings)
        memo["ctx"] = await Context.create(memo["core"])

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        ctx: Context | None = memo.get("ctx")
        if ctx is not None:
            await ctx.aclose()

    return registry


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="customer-service operator",
        description="Reconcile RewardCampaign resources into reward campaigns (kopf).",
    )
    parser.parse_args(argv)
    settings = load()
    telemetry.setup(settings.core, "operator")
    asyncio.run(schema.check(settings.core))
    metrics_port = telemetry.start_metrics_server(settings.core.metrics_port)
    where = "the whole cluster" if settings.clusterwide else ", ".join(settings.namespaces)
    log.warning("reconciling RewardCampaigns in %s; metrics on :%s", where, metrics_port)
    kopf.run(
        registry=build_registry(settings),
        clusterwide=settings.clusterwide,
        namespaces=settings.namespaces,
        standalone=False,
        peering_name=PEERING,
        # Distinct priorities: equal ones would both keep working (kopf only warns).
        priority=secrets.randbelow(2**31 - 1) + 1,
        liveness_endpoint=f"http://0.0.0.0:{settings.liveness_port}/healthz",
        memo=kopf.Memo(core=settings.core, retry_seconds=settings.retry_seconds),
    )
    return 0
