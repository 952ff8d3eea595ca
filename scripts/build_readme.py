"""Assemble README.md from its sources, so each part has one home.

- docs/_head.md: the two commands, processes, configuration (table generated
  from the variables the code registers: scripts/config_table.py);
- an API overview generated from proto/customer/v1/customer.proto;
- the area sections, docs/<area>.md, each written beside its code;
- the latest benchmark summary, bench/SUMMARY.md (written by `make bench`);
- docs/_tail.md: development notes.

`python scripts/build_readme.py` rewrites README.md; `--check` fails when it is
stale (tests/unit/test_readme.py runs the check).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from config_table import table

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SECTIONS = (
    "profiles",
    "loyalty",
    "wallet",
    "consumer",
    "streams",
    "jobs",
    "campaigns",
    "security",
    "kubernetes",
    "e2e",
)
RPC = re.compile(r"^\s*rpc (\w+)\((stream )?[\w.]+\) returns \((stream )?[\w.]+\)")
GROUP = re.compile(r"^\s*// ---- (.+?) -+$")


def api_overview() -> str:
    """One row per RPC with the comment the proto gives it."""
    rows = [
        "## API overview",
        "",
        "`customer.v1.CustomerService` on `GRPC_PORT`, beside `grpc.health.v1.Health` and "
        "server reflection. The full contract, with every field's rules, is "
        "[proto/customer/v1/customer.proto](proto/customer/v1/customer.proto); order event "
        "payloads are in [events.proto](proto/customer/v1/events.proto).",
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
            text = " ".join(comment).replace("|", "\\|")
            rows.append(f"| {group} | `{m[1]}` | {kind} | {text} |")
            comment = []
        elif not line.strip():
            comment = []
    return "\n".join(rows)


def build() -> str:
    head = (DOCS / "_head.md").read_text().replace("{config_table}", table())
    parts = [head.rstrip(), api_overview()]
    for name in SECTIONS:
        path = DOCS / f"{name}.md"
        if path.exists():
            parts.append(path.read_text().rstrip())
    summary = ROOT / "bench" / "SUMMARY.md"
    if summary.exists():
        body = summary.read_text().replace("# Benchmark summary", "## Benchmarks", 1)
        parts.append(
            body.rstrip() + "\n\nRe-run with `make bench` (quick sizes; "
            "`python bench/run_all.py --full` for full sizes)."
        )
    tail = DOCS / "_tail.md"
    if tail.exists():
        parts.append(tail.read_text().rstrip())
    return "\n\n".join(parts) + "\n"


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
