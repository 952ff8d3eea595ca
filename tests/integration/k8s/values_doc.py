"""The values table of docs/kubernetes.md, generated from values.yaml's `# --` comments.

    python -m tests.integration.k8s.values_doc    # print the table to paste

A `# --` comment documents the key below it (and, for a map, everything in it);
following `#` lines continue the description.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

VALUES = Path(__file__).resolve().parents[3] / "helm" / "customer-service" / "values.yaml"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):")
LONGEST_DEFAULT = 50
PIPE = "\\|"  # a literal pipe inside a Markdown table cell


def documented(text: str) -> dict[str, str]:
    """Dotted key -> description, in file order."""
    docs: dict[str, str] = {}
    parents: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if pending is not None and stripped.startswith("#"):
            pending.append(stripped[1:].strip())
            continue
        match = KEY.match(line)
        if not match:
            if not stripped.startswith("#"):
                pending = None
            continue
        indent = len(match["indent"])
        while parents and parents[-1][0] >= indent:
            parents.pop()
        path = ".".join([p for _, p in parents] + [match["key"]])
        parents.append((indent, match["key"]))
        if pending is not None:
            docs[path] = " ".join(pending)
            pending = None
    return docs


def leaves(values: Any, prefix: str = "") -> list[str]:
    if isinstance(values, dict) and values:
        return [leaf for k, v in values.items() for leaf in leaves(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


def lookup(values: Any, path: str) -> Any:
    for part in path.split("."):
        values = values[part]
    return values


def table() -> str:
    text = VALUES.read_text()
    values = yaml.safe_load(text)
    rows = ["| Key | Default | Description |", "|---|---|---|"]
    for path, description in documented(text).items():
        default = json.dumps(lookup(values, path), separators=(", ", ": "))
        shown = f"`{default}`" if len(default) <= LONGEST_DEFAULT else "see values.yaml"
        shown = shown.replace("|", PIPE)
        rows.append(f"| `{path}` | {shown} | {description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
