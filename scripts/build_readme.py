"""Generate README.md: a page a newcomer reads in five minutes, kept true by the code.

The prose is docs/_readme.md. Three parts of it are generated, so they cannot drift:
- {config_table}: every variable the code registers (scripts/config_table.py);
- {api_overview}: one line per RPC of proto/customer/v1/customer.proto, with the first
  sentence of the comment the proto gives it;
- {docs_index}: the pages of docs/ (PAGES below; tests/unit/test_readme.py checks that
  it names every page and that mkdocs.yml's nav has the same ones);
- {latest_figures}: the figures of docs/performance.md that have a target, and the
  req/s of the authenticated hot path, with the run's machine and load average
  (`make bench` writes that page, then runs this).

The area docs (docs/*.md) stay in docs/ and are not copied in. `python
scripts/build_readme.py` rewrites README.md; `--check` fails when it is stale
(tests/unit/test_readme.py runs the same comparison).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from config_table import table

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# The user and operator docs, in reading order, with what each is for.
PAGES = (
    (
        "profiles.md",
        "Families and customer profiles: validation, update masks, idempotency, caching",
    ),
    (
        "loyalty.md",
        "Favorites, the points ledger, rewards and redemptions, the Order Service's hot path",
    ),
    ("wallet.md", "The family wallet: pooling, a child's approvals, weekly caps, the lock order"),
    (
        "consumer.md",
        "Order events: the contract with examples, how the consumer applies them, operations",
    ),
    ("streams.md", "Live statistics, the activity feed, flow control, batch import"),
    ("jobs.md", "Background jobs: schedules, what each guarantees, running twice safely"),
    ("campaigns.md", "RewardCampaign resources and the operator, with and without Kubernetes"),
    ("security.md", "TLS, authentication, roles and scopes, limits, audit, erasure"),
    (
        "kubernetes.md",
        "The image, the Helm chart, upgrades, scaling, dashboards and alerts, every value",
    ),
    ("e2e.md", "The end-to-end suite under faults, and the soak"),
    (
        "development.md",
        "Repository layout, make targets, layering rules, how tests and benchmarks run",
    ),
    ("performance.md", "The current benchmark figures, written by `make bench`"),
)
RPC = re.compile(r"^\s*rpc (\w+)\((stream )?[\w.]+\) returns \((stream )?[\w.]+\)")
GROUP = re.compile(r"^\s*// ---- (.+?) -+$")
SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)(?<=[A-Za-z0-9)`])\.(\s|$)")


def first_sentence(text: str) -> str:
    match = SENTENCE_END.search(text)
    return text[: match.start() + 1] if match else text


def api_overview() -> str:
    """One row per RPC with the first sentence of the comment the proto gives it."""
    rows = [
        "## API overview",
        "",
        "`customer.v1.CustomerService` on `GRPC_PORT`, beside `grpc.health.v1.Health` and "
        "server reflection (`grpc.reflection.v1` and `v1alpha`, both open). The full "
        "contract, with every field's rules, is `proto/customer/v1/customer.proto`; each "
        "area's page in `docs/` says what the calls guarantee.",
        "",
        "| Area | RPC | Kind | What it does |",
        "|---|---|---|---|",
    ]
    group, comment = "Health", []
    lines = (ROOT / "proto/customer/v1/customer.proto").read_text().splitlines()
    for line in lines:
        if m := GROUP.match(line):
            group, comment = m[1], []
        elif line.strip().startswith("//"):
            comment.append(line.strip()[2:].strip())
        elif m := RPC.match(line):
            kind = {
                (False, False): "unary",
                (False, True): "server stream",
                (True, False): "client stream",
                (True, True): "bidi stream",
            }[(bool(m[2]), bool(m[3]))]
            text = first_sentence(" ".join(comment)).replace("|", "\\|")
            rows.append(f"| {group} | `{m[1]}` | {kind} | {text} |")
            comment = []
        elif not line.strip():
            comment = []
    return "\n".join(rows)


def docs_index() -> str:
    rows = [f"- [{name}](docs/{name}): {what}" for name, what in PAGES]
    rows.append(
        "- [design/](docs/design/index.md): dated notes on how the code came to be as it is: "
        "measurements of the time, what was tried and dropped"
    )
    return "\n".join(rows)


def latest_figures() -> str:
    """docs/performance.md's line about the run, and its rows with a target (plus the
    authenticated hot path's req/s): the README shows the latest run, and only it."""
    page = (DOCS / "performance.md").read_text()
    when = next((line for line in page.splitlines() if line.startswith("Written by")), "")
    rows = [line for line in page.splitlines() if line.startswith("|")]
    kept = rows[:2] + [r for r in rows[2:] if not r.endswith("| – |") or "req/s (k6, " in r]
    return when + "\n\n" + "\n".join(kept)


def build() -> str:
    text = (DOCS / "_readme.md").read_text()
    for key, part in (
        ("{config_table}", table()),
        ("{api_overview}", api_overview()),
        ("{docs_index}", docs_index()),
        ("{latest_figures}", latest_figures()),
    ):
        text = text.replace(key, part)
    return text.rstrip() + "\n"


def main() -> int:
    text = build()
    readme = ROOT / "README.md"
    if "--check" in sys.argv[1:]:
        if readme.read_text() != text:
            print("README.md is stale: run `python scripts/build_readme.py`")
            return 1
        return 0
    readme.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
