"""`customer-service campaigns`: apply, list or delete RewardCampaigns without Kubernetes.

The same use cases the operator's handlers call, against the database in the
environment: a file that `kubectl apply -f` accepts works here too, so `make
run` (and a newcomer without a cluster) sees campaigns earn points.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from customer_core.config import load_settings
from customer_core.context import Context
from customer_core.errors import InvalidArgument
from customer_core.usecases import campaigns as usecases

API_VERSION = "rewards.coffee.example/v1alpha1"
KIND = "RewardCampaign"
RESOURCE = "rewardcampaign.rewards.coffee.example"


def resources(path: Path) -> Iterator[dict[str, Any]]:
    """Every RewardCampaign in a YAML file (several documents, or a `List`)."""
    try:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidArgument(str(path), f"cannot read YAML: {exc}") from exc
    for document in documents:
        if document is None:
            continue
        if not isinstance(document, dict):
            raise InvalidArgument(str(path), "each document must be a mapping")
        if document.get("kind") == "List":
            yield from (item for item in document.get("items") or () if isinstance(item, dict))
        else:
            yield document


def _identify(resource: dict[str, Any], default_namespace: str | None) -> tuple[str, str]:
    if resource.get("apiVersion") != API_VERSION or resource.get("kind") != KIND:
        raise InvalidArgument("apiVersion", f"expected {API_VERSION} {KIND}")
    meta = resource.get("metadata") or {}
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidArgument("metadata.name", "is required")
    return meta.get("namespace") or default_namespace or "default", name


async def apply_files(
    ctx: Context, paths: Sequence[Path], namespace: str | None = None
) -> tuple[list[str], list[str]]:
    """Apply every resource: (lines as kubectl prints them, errors); a bad one stops none."""
    done: list[str] = []
    errors: list[str] = []
    for path in paths:
        for resource in resources(path):
            try:
                ns, name = _identify(resource, namespace)
                applied = await usecases.apply_campaign(ctx, ns, name, resource.get("spec") or {})
            except InvalidArgument as exc:
                label = (resource.get("metadata") or {}).get("name", "?")
                errors.append(f"{path}: {label}: {exc}")
                continue
            verb = "configured" if applied.changed else "unchanged"
            verb = "created" if applied.created else verb
            done.append(f"{RESOURCE}/{name} {verb} ({applied.status.phase.value})")
    return done, errors


def _table(rows: list[usecases.CampaignStatus]) -> str:
    header = ("NAMESPACE", "NAME", "PHASE", "EFFECT", "WINDOW (UTC)", "POINTS", "CUSTOMERS", "LEFT")
    lines = [header]
    for row in rows:
        effect = row.spec.get("effect") or {}
        multiplier = effect.get("multiplier")
        bonus = effect.get("bonusPoints")
        shown = " ".join(
            part
            for part in (f"x{multiplier}" if multiplier else "", f"+{bonus}" if bonus else "")
            if part
        )
        namespace, _, name = row.key.partition("/")
        window = f"{row.starts_at:%Y-%m-%d %H:%M}..{row.ends_at:%Y-%m-%d %H:%M}"
        left = "-" if row.budget_left is None else str(row.budget_left)
        lines.append(
            (
                namespace,
                name,
                row.phase.value,
                shown,
                window,
                str(row.points_awarded),
                str(row.customers_reached),
                left,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


async def _run(args: argparse.Namespace) -> int:
    ctx = await Context.create(load_settings())
    try:
        if args.command == "apply":
            done, errors = await apply_files(ctx, [Path(f) for f in args.filename], args.namespace)
            for line in done:
                print(line)
            for error in errors:
                print(f"error: {error}", file=sys.stderr)
            return 1 if errors else 0
        if args.command == "list":
            rows = await usecases.list_campaigns(ctx, args.namespace, include_ended=args.all)
            print(_table(rows) if rows else "No reward campaigns.")
            return 0
        namespace = args.namespace or "default"
        ended = await usecases.delete_campaign(ctx, namespace, args.name)
        if ended is None:
            print(f"error: {RESOURCE}/{args.name} not found in {namespace}", file=sys.stderr)
            return 1
        print(f'{RESOURCE} "{args.name}" deleted ({ended.points_awarded} points were awarded)')
        return 0
    finally:
        await ctx.aclose()


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="customer-service campaigns",
        description="Apply, list or delete RewardCampaigns straight in the database.",
    )
    sub = top.add_subparsers(dest="command", required=True)
    apply = sub.add_parser("apply", help="create or update campaigns from YAML files")
    apply.add_argument("-f", "--filename", action="append", required=True, help="a YAML file")
    apply.add_argument("-n", "--namespace", help="for resources without metadata.namespace")
    listing = sub.add_parser("list", help="campaigns with their phase and points awarded")
    listing.add_argument("-n", "--namespace", help="only this namespace (default: all)")
    listing.add_argument("--all", action="store_true", help="include deleted campaigns")
    delete = sub.add_parser("delete", help="end a campaign now (its history stays)")
    delete.add_argument("name")
    delete.add_argument("-n", "--namespace", help="default: default")
    return top


def main(argv: list[str]) -> int:
    return asyncio.run(_run(parser().parse_args(argv)))


# The example resources, when running from a checkout (`make run`).
EXAMPLES = Path(__file__).resolve().parents[3] / "k8s" / "examples"


async def apply_examples(ctx: Context) -> str:
    """Apply k8s/examples/*.yaml (for `customer-service dev`); a one-line summary."""
    paths = sorted(EXAMPLES.glob("*.yaml")) if EXAMPLES.is_dir() else []
    if not paths:
        return "no example campaigns found"
    done, errors = await apply_files(ctx, paths)
    return f"{len(done)} example campaigns applied" + (f", {len(errors)} refused" if errors else "")
