"""A real Prometheus (Debian's `prometheus`) scraping the e2e processes, and its HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from customer_launcher.devstack import die_with_parent, free_port
from tests.support.e2e_stack import Proc

BINARY = shutil.which("prometheus")
# What a ServiceMonitor adds to every series in a cluster; the dashboards filter on it.
NAMESPACE = "e2e"
SCRAPE_SECONDS = 1


class Prometheus:
    def __init__(self, root: Path, procs: list[Proc], rules: list[dict[str, Any]]) -> None:
        assert BINARY is not None
        self.root = root
        self.port = free_port()
        jobs: dict[str, list[str]] = {}
        for p in procs:
            jobs.setdefault(p.name, []).append(f"127.0.0.1:{p.metrics_port}")
        config = {
            "global": {
                "scrape_interval": f"{SCRAPE_SECONDS}s",
                "evaluation_interval": f"{SCRAPE_SECONDS}s",
            },
            "rule_files": [str(root / "rules.yml")],
            "scrape_configs": [
                {
                    "job_name": name,
                    "static_configs": [{"targets": targets, "labels": {"namespace": NAMESPACE}}],
                }
                for name, targets in sorted(jobs.items())
            ],
        }
        (root / "prometheus.yml").write_text(yaml.safe_dump(config))
        (root / "rules.yml").write_text(yaml.safe_dump({"groups": rules}))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        cmd = [
            str(BINARY),
            f"--config.file={self.root / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.root / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        with open(self.root / "prometheus.log", "ab") as log:
            self.process = subprocess.Popen(
                die_with_parent(cmd), stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2):
                    return
            except OSError:
                assert self.process.poll() is None, self.log()
                time.sleep(0.3)
        raise AssertionError(f"prometheus not ready within {timeout}s\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return (self.root / "prometheus.log").read_text(errors="replace")[-4000:]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, **params: str | list[str]) -> Any:
        """`data` of an API answer; an error answer (bad query...) raises with its message."""
        query = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as e:
            body = json.loads(e.read())
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """An instant query's samples, as (labels, value)."""
        data = self.api("query", query=expr)
        assert data["resultType"] in ("vector", "scalar"), data
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]
