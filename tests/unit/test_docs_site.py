"""The documentation site builds offline with no warning (`make docs` does the same)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mkdocs_builds_strict_without_warnings(tmp_path: Path) -> None:
    # Material's banner about MkDocs 2.0 is advice, not a build warning; it is silenced so
    # the output shows only what the build itself says.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "index.html").exists()
    assert (tmp_path / "design" / "consumer" / "index.html").exists()
