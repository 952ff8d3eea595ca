"""Generate Python code and type stubs from proto/ into shared/customer_core/pb/.

`python scripts/genproto.py` writes the files; `--check` regenerates into a
temporary folder and fails when the committed code differs (stale).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
OUT = ROOT / "shared" / "customer_core" / "pb"
# protoc writes imports relative to the proto root ("from customer.v1 import x");
# the code lives inside customer_core.pb, so those imports are rewritten.
IMPORT = re.compile(r"^from customer\.v1 import", re.MULTILINE)


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    # The mypy plugins are console scripts beside this interpreter.
    bindir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    protos = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO}",
        f"-I{include}",
        f"--python_out={out}",
        f"--mypy_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for path in out.rglob("*.py*"):
        text = IMPORT.sub("from customer_core.pb.customer.v1 import", path.read_text())
        path.write_text(text)
    for pkg in [out, *(p for p in out.rglob("*") if p.is_dir())]:
        (pkg / "__init__.py").touch()
    (out / "py.typed").touch()


def differences(a: Path, b: Path) -> list[str]:
    found: list[str] = []
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__"])
    stack = [(cmp, Path())]
    while stack:
        c, rel = stack.pop()
        found += [str(rel / n) for n in c.left_only + c.right_only + c.diff_files]
        found += [str(rel / n) for n in c.funny_files]
        stack += [(sub, rel / name) for name, sub in c.subdirs.items()]
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="fail if generated code is stale")
    opts = parser.parse_args()
    if not opts.check:
        shutil.rmtree(OUT, ignore_errors=True)
        generate(OUT)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "pb"
        generate(fresh)
        stale = differences(OUT, fresh)
    if stale:
        print("generated code is stale; run `make proto`:", ", ".join(sorted(stale)))
        return 1
    print("generated code is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
