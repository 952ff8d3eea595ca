"""The image: Dockerfile lint, what the final stage may hold, and the package it installs.

No Docker engine runs here, so the image is proven in parts: hadolint on the
Dockerfile, the final stage read instruction by instruction, and the build
stage's `pip install --no-deps .` done for real on exactly the files the build
context lets in, to see that the wheel carries every package, migration and the
`customer-service` entry point, and nothing of the dev extra.
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.integration.k8s.conftest import ROOT, load_values

DOCKERFILE = ROOT / "Dockerfile"
CHART_VALUES = ROOT / "helm" / "customer-service" / "values.yaml"
OCI_LABELS = {"title", "description", "version", "revision", "created", "source", "licenses"}
COMPILERS = ("gcc", "g++", "clang", "build-essential", "make", "cc")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending += line.removesuffix("\\").strip() + " "
        if not line.endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            pending = ""
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_final_stage_is_slim_non_root_and_has_no_compiler() -> None:
    stage = final_stage()
    base = stage[0][1]
    assert "-slim" in base and " AS runtime" in base
    users = [arg for word, arg in stage if word == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    for word, arg in stage:
        if word == "RUN":
            assert "apt-get install" not in arg and "pip install" not in arg, arg
            assert not any(f" {c} " in f" {arg} " for c in COMPILERS), arg
        if word == "COPY":
            assert arg.startswith("--from=build /opt/venv"), arg
    assert ("ENTRYPOINT", '["customer-service"]') in stage


def test_oci_labels_are_set() -> None:
    labels = " ".join(arg for word, arg in final_stage() if word == "LABEL")
    assert {k for k in OCI_LABELS if f"org.opencontainers.image.{k}=" in labels} == OCI_LABELS


def test_ports_match_the_chart() -> None:
    values = load_values(CHART_VALUES)
    (exposed,) = [arg.split() for word, arg in final_stage() if word == "EXPOSE"]
    ports = {int(p) for p in exposed}
    assert {values["service"]["grpcPort"], values["metrics"]["port"]} <= ports
    assert {values["operator"]["healthPort"], values["consumer"]["healthPort"]} <= ports


def test_only_runtime_dependencies_are_installed() -> None:
    """The build installs `project.dependencies` and `.` itself: never the dev extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dev = {d.split(">")[0].split("[")[0] for d in project["optional-dependencies"]["dev"]}
    runtime = {d.split(">")[0].split("[")[0] for d in project["dependencies"]}
    assert not dev & runtime
    text = " ".join(arg for word, arg in instructions() if word == "RUN")
    assert "[dev]" not in text and "[test]" not in text
    assert '["project"]["dependencies"]' in text and "pip install --no-deps ." in text


def _context_files() -> list[Path]:
    """Files `docker build .` sends, by .dockerignore (a `*` then `!` re-includes)."""
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    kept = []
    for path in ROOT.rglob("*"):
        if not path.is_file() or ".git" in path.parts:
            continue
        rel = path.relative_to(ROOT).as_posix()
        included = True
        for rule in rules:
            negate = rule.startswith("!")
            pattern = rule.lstrip("!").rstrip("/")
            parts = rel.split("/")
            prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            hit = any(fnmatch.fnmatch(p, pattern.replace("**/", "*")) for p in prefixes)
            if hit:
                included = negate
        if included:
            kept.append(path)
    return kept


@pytest.mark.timeout(240)
def test_the_image_install_step_builds_a_complete_package(tmp_path: Path) -> None:
    context = tmp_path / "context"
    files = _context_files()
    sent = {f.relative_to(ROOT).parts[0] for f in files}
    assert sent == {"pyproject.toml", "README.md", "shared", "services"}
    for f in files:
        target = context / f.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path / "dist"),
            str(context),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = (tmp_path / "dist").glob("customer_service-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in (
        "customer_core",
        "customer_api",
        "customer_consumer",
        "customer_scheduler",
        "customer_operator",
        "customer_launcher",
    ):
        assert f"{package}/__init__.py" in names, package
    migrations = ROOT / "shared" / "customer_core" / "db" / "migrations"
    for sql in migrations.glob("*.sql"):
        assert f"customer_core/db/migrations/{sql.name}" in names, sql.name
    assert not any(n.startswith("tests/") for n in names)
    (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "customer-service = customer_launcher.cli:main" in text
