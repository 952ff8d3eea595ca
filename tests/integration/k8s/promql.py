"""What the dashboards and alerts query: metric names and the labels they use.

PromQL is parsed with promql-parser (the Prometheus grammar, in Rust), never
matched with regular expressions, so a metric inside a function, an aggregation
or a binary operation is found the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser

# Grafana's interval variables are not PromQL; any valid duration stands in.
GRAFANA_MACROS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


@dataclass(frozen=True)
class Query:
    where: str
    expr: str


@dataclass
class Use:
    """Labels one expression needs on one metric."""

    metric: str
    labels: set[str] = field(default_factory=set)


def dashboard_queries(path: Path) -> Iterator[Query]:
    board = json.loads(path.read_text())
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for macro, value in GRAFANA_MACROS.items():
                expr = expr.replace(macro, value)
            yield Query(f"{path.name}: {panel['title']}", expr)


def rule_queries(rule_manifest: dict[str, Any]) -> Iterator[Query]:
    for group in rule_manifest["spec"]["groups"]:
        for rule in group["rules"]:
            yield Query(f"alert {rule['alert']}", rule["expr"])


def _selectors(node: Any) -> list[Use]:
    found: list[Use] = []

    def visit(n: Any) -> None:
        if isinstance(n, promql_parser.VectorSelector):
            found.append(Use(str(n.name), {m.name for m in n.matchers.matchers} - {"__name__"}))

    promql_parser.walk(node, visit)
    return found


def uses(expr: str) -> list[Use]:
    """Every metric the expression selects, with the labels it matches on, plus the
    labels each `by (...)` aggregation groups it by."""
    tree = promql_parser.parse(expr)
    found = _selectors(tree)

    def grouping(n: Any) -> None:
        modifier = getattr(n, "modifier", None)
        by = promql_parser.AggModifierType.By
        if isinstance(n, promql_parser.AggregateExpr) and modifier and modifier.type == by:
            found.extend(Use(u.metric, set(modifier.labels)) for u in _selectors(n.expr))

    promql_parser.walk(tree, grouping)
    return found
