"""The hash of what `.dockerignore` lets into the build context (the image's sources).

`make image` labels the image with it, and tests/image run only against an image built
from the sources in the work tree (an older one is skipped with the reason).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

# As .dockerignore: these in, caches and build metadata out.
INCLUDED = ("pyproject.toml", "README.md", "shared", "services")
EXCLUDED_PARTS = ("__pycache__",)
EXCLUDED_SUFFIXES = (".pyc", ".egg-info")


def _files(root: Path) -> list[Path]:
    found: list[Path] = []
    for name in INCLUDED:
        top = root / name
        for path in [top] if top.is_file() else sorted(top.rglob("*")):
            rel = path.relative_to(root)
            if any(p in EXCLUDED_PARTS or p.endswith(EXCLUDED_SUFFIXES) for p in rel.parts):
                continue
            if path.is_file():
                found.append(path)
    return found


def context_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in _files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


if __name__ == "__main__":
    print(context_hash(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()))
