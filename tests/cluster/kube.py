"""kubectl as a person would run it, against one kubeconfig; and polling for a state."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
T = TypeVar("T")


class KubectlError(Exception):
    def __init__(self, args: list[str], stderr: str) -> None:
        super().__init__(f"kubectl {' '.join(args)}: {stderr.strip()}")
        self.stderr = stderr


@dataclass(frozen=True)
class Kubectl:
    kubeconfig: Path
    namespace: str = "default"

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        argv = [
            KUBECTL,
            f"--kubeconfig={self.kubeconfig}",
            f"--namespace={self.namespace}",
            "--request-timeout=30s",
            *args,
        ]
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=90)
        if check and done.returncode != 0:
            raise KubectlError(list(args), done.stderr)
        return done.stdout

    def apply(self, manifest: str) -> str:
        return self.run("apply", "-f", "-", stdin=manifest)

    def create(self, manifest: str) -> str:
        return self.run("create", "-f", "-", stdin=manifest)

    def get(self, *what: str) -> Any:
        return json.loads(self.run("get", *what, "-o", "json"))

    def exists(self, *what: str) -> bool:
        out = self.run("get", *what, "--ignore-not-found", "-o", "name")
        return bool(out.strip())

    def in_namespace(self, namespace: str) -> Kubectl:
        return Kubectl(self.kubeconfig, namespace)


def eventually(probe: Callable[[], T | None], *, timeout: float = 60.0, what: str = "") -> T:
    """Poll until `probe` returns something truthy; the last value is in the failure."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = probe()
        except KubectlError as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what or 'reached'} in {timeout:.0f}s; last: {last!r}")
        time.sleep(0.5)
