"""The built image, run with podman as this machine allows (scripts/image/podman.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from scripts.image.context_hash import context_hash

ROOT = Path(__file__).parents[2]
IMAGE = os.environ.get("IMAGE", "localhost/customer-service:dev")


def podman(
    *args: str, timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`podman ARGS` with the storage, runtime and rlimit flags of scripts/image/podman.sh."""
    script = f'. {ROOT / "scripts/image/podman.sh"}; podman "$@"'
    done = subprocess.run(
        ["bash", "-c", script, "podman", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


def why_absent() -> str | None:
    """Why the image tests cannot run here, or None when they can."""
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install podman runc mmdebstrap, then make image)"
    if podman("image", "exists", IMAGE, check=False, timeout=60).returncode != 0:
        return f"the image {IMAGE} is not built on this machine: run `make image`"
    label = '{{index .Labels "customer-service.context"}}'
    built = podman("image", "inspect", "--format", label, IMAGE, check=False).stdout.strip()
    if built != context_hash(ROOT):
        return f"the image {IMAGE} was built from other sources than these: run `make image`"
    return None
